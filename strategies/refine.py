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
    """Re-score the rated prompts, then try each comment-derived edit on the best of them (prepended, and
    before the answer cue), and the two most asked-for edits together. Strategies after it start from the
    leaderboard, so with a :class:`BlendedScorer` they continue from what people rated well."""

    name = "refine"
    description = "Apply the edits that ratings' comments ask for to the rated prompts (promptsearch refine)."

    def __init__(self, prompts: list = (), edits: list = (), bases: int = 3, pairs: bool = True, blended: bool = False):
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
        queue = list(cands)
        for base in cands[: self.bases]:
            for e in self.edits:
                if escape(e) in base.prompt:
                    continue
                for where, text in (("", prepend(base.prompt, e)), ("@cue", before_cue(base.prompt, e))):
                    if text:
                        queue.append(Candidate(text, base.label_words, strategy=self.name, parents=(base.id,),
                                               edit=f"feedback{where}:{e}"))
            if self.pairs and len(self.edits) >= 2:
                a, b = self.edits[:2]
                queue.append(Candidate(prepend(prepend(base.prompt, b), a), base.label_words, strategy=self.name,
                                       parents=(base.id,), edit=f"feedback:{a}+feedback:{b}"))
        self._queue = queue

    def propose(self, context: SearchContext, n: int) -> list[Candidate]:
        batch, self._queue = self._queue[:n], self._queue[n:]
        return batch
