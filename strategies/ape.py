"""Model-written instructions: APE's induction, then OPRO's scored-history rewrites.

Round 1 (Zhou et al. 2023, APE, forward mode): the proposer model continues
"I gave a friend an instruction and N inputs. ... Here are the input-output pairs: ... The instruction was to"
shown N train demonstrations. The proposer decodes greedily, so the proposals differ by their seeded
demonstration draws and by N (``demo_counts`` in turn).

Later rounds (Yang et al. 2024, OPRO): the meta-prompt lists the instructions scored so far with their dev
scores in ascending order (the best last, nearest the answer), a few train exemplars, and asks for a new,
different instruction that scores higher; again one request per seeded exemplar draw.

What the model writes is cleaned by ``mutations.clean_proposal`` (evolution's clean-up) and replaces the
instruction of the best prompt so far; its format (input slot, answer cue, demonstrations) and label words
stay. Demonstrations come from train only: dev steers the search through scores, test never. Generations
are charged to the budget (one pass per meta-prompt, as evolution does) and cached per stage.
"""

from __future__ import annotations

import logging
import re

from promptsearch.candidate import Candidate
from promptsearch.strategy import SearchContext, Strategy

from . import mutations as mut

log = logging.getLogger(__name__)

APE_HEAD = ("I gave a friend an instruction and {n} inputs. The friend read the instruction and wrote an output "
            "for every one of the inputs. Here are the input-output pairs:\n\n")
APE_CUE = "The instruction was to"  # APE's own cue: the model continues with a verb phrase
OPRO_HEAD = "Your task is to write an instruction for a task."
OPRO_HISTORY = (" Below are instructions written before, each with its score (0 to 100, higher is better), "
                "from the lowest score to the highest.")
OPRO_EXAMPLES = "Here are examples of the task, with the output the instruction should lead to:\n\n"
OPRO_ASK = ("Write a new instruction that is different from all the instructions above and gets a higher score "
            "than all of them. Reply with the instruction only.")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


class APE(Strategy):
    name = "ape"
    description = "The proposer model writes instructions: APE's induction from train pairs, then OPRO's rewrites."

    def __init__(self, proposals: int = 8, demo_counts: tuple = (5, 3, 8), rounds: int = 3, per_round: int = 4,
                 history: int = 8, exemplars: int = 3, max_input_words: int = 40, meta_tokens: int = 40):
        if min(proposals, rounds, per_round, history, exemplars, max_input_words, meta_tokens) < 1 or not demo_counts \
                or min(demo_counts) < 1:
            raise ValueError("proposals, rounds, per_round, history, exemplars, demo_counts, max_input_words and "
                             "meta_tokens must be >= 1")
        self.proposals = proposals
        self.demo_counts = tuple(demo_counts)
        self.rounds = rounds
        self.per_round = per_round
        self.history = history
        self.exemplars = exemplars
        self.max_input_words = max_input_words
        self.meta_tokens = meta_tokens

    # ---- protocol -----------------------------------------------------------------------------
    def start(self, context: SearchContext) -> None:
        self.round = 0
        self._queue: list[Candidate] = []
        self._proposed: set[str] = set()
        self._replies: dict[str, str] = {}
        self._base = context.stage_best[0] if context.stage_best else Candidate(context.task.seed_prompt)

    def propose(self, context: SearchContext, n: int) -> list[Candidate]:
        while not self._queue and self.round < self.rounds:
            self.round += 1
            messages = self.ape_messages(context) if self.round == 1 else self.opro_messages(context)
            self._queue = self._candidates(context, messages)
        batch, self._queue = self._queue[:n], self._queue[n:]
        self._proposed.update(c.id for c in batch)
        return batch

    # ---- meta-prompts -------------------------------------------------------------------------
    def ape_messages(self, ctx: SearchContext) -> list[str]:
        """APE's forward template, once per seeded draw of N train pairs (N cycles through demo_counts)."""
        out = []
        for i in range(self.proposals):
            picks = self._draw(ctx, self.demo_counts[i % len(self.demo_counts)])
            if picks:
                out.append(ape_prompt([self.pair(ctx, ex) for ex in picks]))
        return out

    def opro_messages(self, ctx: SearchContext) -> list[str]:
        """OPRO's meta-prompt over the scored history, once per seeded exemplar draw."""
        history = self.scored_history(ctx)  # may be empty (a seed prompt without an instruction)
        out = []
        for _ in range(self.per_round):
            picks = self._draw(ctx, self.exemplars)
            out.append(opro_prompt(history, [self.pair(ctx, ex) for ex in picks]))
        return out

    def scored_history(self, ctx: SearchContext) -> list[tuple[str, float]]:
        """(instruction, dev score) of the best ``history`` distinct instructions of the run, ascending."""
        best: dict[str, tuple[str, float]] = {}
        for trial in ctx.leaderboard():  # best first: an instruction keeps its best score
            c = trial.candidate
            if c.soft is not None:
                continue
            instruction = mut.readable(mut.split_prompt(c.prompt)[0]).strip()
            key = mut._norm(instruction)
            if key and key not in best:
                best[key] = (instruction, trial.score)
            if len(best) >= self.history:
                break
        return sorted(best.values(), key=lambda pair: pair[1])

    def pair(self, ctx: SearchContext, ex) -> tuple[str, str]:
        """A train example as shown to the proposer: the input cut to max_input_words, the answer as scored."""
        words = ex.input.split()
        text = " ".join(words[: self.max_input_words]) + (" ..." if len(words) > self.max_input_words else "")
        if ctx.task.kind == "classification" and ex.label is not None:
            labels = self._base.label_words or ctx.task.label_words
            return text, labels[ex.label]
        return text, ex.output

    def _draw(self, ctx: SearchContext, k: int) -> list:
        pool = list(ctx.task.train)  # train only: dev and test never reach the proposer
        return ctx.rng.sample(pool, min(k, len(pool))) if pool else []

    # ---- the model's answers ------------------------------------------------------------------
    def _candidates(self, ctx: SearchContext, messages: list[str]) -> list[Candidate]:
        texts = [self.meta_text(ctx, m) for m in messages]
        todo = sorted({t for t in texts if t not in self._replies})
        if todo:
            replies = ctx.scorer.complete(todo, max_new_tokens=self.meta_tokens)
            ctx.charge(len(todo))
            self._replies.update(zip(todo, replies))
        instruction, rest = mut.split_prompt(self._base.prompt)
        known = {t.candidate.id for t in ctx.leaderboard()} | self._proposed
        out = []
        for message, text in zip(messages, texts):
            new = clean_instruction(self._replies[text], instruction, completion=self.round == 1)
            if new is not None and copies_an_example(new, message):
                new = None
            if new is None:
                log.debug("ape reply dropped: %r", self._replies[text])
                continue
            edit = "ape" if self.round == 1 else f"opro:{self.round}"
            c = Candidate(mut.join_prompt(new, rest), self._base.label_words, strategy=self.name,
                          parents=(self._base.id,), edit=edit)
            if c.id not in known:
                known.add(c.id)
                out.append(c)
        return out

    def meta_text(self, ctx: SearchContext, message: str) -> str:
        """APE's template is a completion (it ends in its cue); OPRO's is a request, in the proposer's chat
        template when it has one (evolution's rule)."""
        if message.endswith(APE_CUE):
            return message
        return mut.as_request(ctx.scorer.proposer, message)


def ape_prompt(pairs: list[tuple[str, str]]) -> str:
    """APE's forward template around the pairs (concatenated: no str.format of task text)."""
    n = len(pairs)
    head = APE_HEAD.replace("{n}", NUMBERS[n] if n < len(NUMBERS) else str(n))
    return head + "".join(f"Input: {x}\nOutput: {y}\n\n" for x, y in pairs) + APE_CUE


def opro_prompt(history: list[tuple[str, float]], pairs: list[tuple[str, str]]) -> str:
    """OPRO's meta-prompt: the history as given (ascending), the exemplars, the request."""
    scored = "".join(f"Instruction: {text}\nScore: {round(100 * score)}\n\n" for text, score in history)
    shown = "".join(f"Input: {x}\nOutput: {y}\n\n" for x, y in pairs)
    head = OPRO_HEAD + (OPRO_HISTORY if history else "") + "\n\n"
    return head + scored + (OPRO_EXAMPLES + shown if pairs else "") + OPRO_ASK


_LEAD = re.compile(r"^[\s:\"'“]*(?:to\s+)?", re.IGNORECASE)


def copies_an_example(proposal: str, message: str, span: int = 5) -> bool:
    """Whether the proposal repeats ``span`` words in a row of an input or output the meta-prompt showed
    (the small model often answers OPRO's request with an exemplar's text)."""
    shown = set()
    for line in message.split("\n"):
        if line.startswith(("Input: ", "Output: ")):
            words = mut._norm(line.split(": ", 1)[1]).split()
            shown.update(tuple(words[i:i + span]) for i in range(len(words) - span + 1))
    words = mut._norm(proposal).split()
    return any(tuple(words[i:i + span]) in shown for i in range(len(words) - span + 1))


def clean_instruction(reply: str, original: str = "", completion: bool = False) -> str | None:
    """The reply made an instruction by evolution's clean-up; a completion of "The instruction was to" first
    loses leading quotes and a repeated "to" and keeps its first sentence ("write the opposite. The output
    was" -> "Write the opposite."): the model runs on, describing the pairs."""
    if completion:
        reply = _LEAD.sub("", reply, count=1)
        reply = re.split(r"(?<=[.!?])\s", reply.strip(), maxsplit=1)[0]
    return mut.clean_proposal(reply, original)
