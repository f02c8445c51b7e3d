"""The refine strategy: apply the edits that people's comments ask for to the prompts they rated.

Used by ``promptsearch refine`` (promptsearch/feedback/refinement.py), which turns comments into edits and blends
ratings into the scores; selectable on its own as ``--strategy refine -o refine.prompts=[...]``.
"""

from __future__ import annotations

from promptsearch.candidate import Candidate
from promptsearch.errors import PromptSearchError
from promptsearch.strategy import SearchContext, Strategy
from promptsearch.template import before_cue, escape, prepend, validate


class Refine(Strategy):
    """Try each comment-derived edit on the best rated prompts (prepended, and before the answer cue), and the
    two most asked-for edits together, then re-score the rated prompts. Strategies after it start from the
    leaderboard, so with a :class:`BlendedScorer` they continue from what people rated well."""

    name = "refine"
    description = "Apply the edits that ratings' comments ask for to the rated prompts (promptsearch refine)."

    def __init__(self, prompts: list = (), edits: list = (), bases: int = 3, pairs: bool = True, blended: bool = False):
        for p in prompts:  # a prompt text, or a rated prompt {"prompt": ..., "label_words": [...]}
            text = p.get("prompt") if isinstance(p, dict) else p
            if not isinstance(text, str):
                raise TypeError(f"prompts must be prompt texts or objects with a 'prompt' text, not {p!r:.60}")
            try:
                validate(text)
            except PromptSearchError as e:
                raise ValueError(f"prompts: {e}") from None
        self.prompts = list(prompts)
        self.edits = [e for e in edits if isinstance(e, str) and e.strip()]
        self.bases = bases
        self.pairs = pairs
        self.blended = blended

    def start(self, context: SearchContext) -> None:
        if self.blended and not getattr(context.scorer, "blends_ratings", False):
            raise PromptSearchError("this run folds in ratings: resume it as a refine run, which blends them into the scores")
        cands = []
        for p in self.prompts:
            text, words = (p.get("prompt"), p.get("label_words")) if isinstance(p, dict) else (p, None)
            cands.append(Candidate(validate(text), tuple(words) if words else None, strategy=self.name, edit="rated"))
        # The edits `refine` announces are scored first (#30: re-scoring the rated prompts used up a small budget
        # before any edit was tried): each edit once, prepended to the best rated prompt, and the pair; then the
        # rated prompts (mostly read from the parent's log); then the other placements and bases.
        queue = []
        for base in cands[: self.bases]:
            for where, place in (("", prepend), ("@cue", before_cue)):
                for e in self.edits:
                    text = None if escape(e) in base.prompt else place(base.prompt, e)
                    if text:
                        queue.append(Candidate(text, base.label_words, strategy=self.name, parents=(base.id,),
                                               edit=f"feedback{where}:{e}"))
            if self.pairs and len(self.edits) >= 2:
                a, b = self.edits[:2]
                queue.append(Candidate(prepend(prepend(base.prompt, b), a), base.label_words, strategy=self.name,
                                       parents=(base.id,), edit=f"feedback:{a}+feedback:{b}"))
        first = [c for c in queue if c.parents == (cands[0].id,) and "@cue" not in c.edit] if cands else []
        self._queue = first + cands + [c for c in queue if c not in first]

    def propose(self, context: SearchContext, n: int) -> list[Candidate]:
        batch, self._queue = self._queue[:n], self._queue[n:]
        return batch
