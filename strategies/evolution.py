"""Evolutionary search over readable prompts (GrIPS-style edits plus EvoPrompt-style model operators).

The population is the best readable prompts scored so far in the run (the search's leaderboard,
racing ranks as fitness), kept diverse: a prompt too similar (token Jaccard) to a better member is
left out. Generation 0 adds variants of the best prompt handed over by earlier strategies (the
seed prompt when evolution runs first): its instruction on the library's formats, the library's
instructions on its format. Each later generation breeds ``n`` children: the elites are parents of
the first ones, tournament selection picks the rest; each child comes from one operator:

- ``delete``, ``swap``, ``add``, ``paraphrase``: phrase-level edits of the instruction (GrIPS);
- ``crossover``: head of one parent's instruction + tail of another's, at phrase boundaries;
- ``model-paraphrase``, ``model-crossover``: the frozen model itself rewrites one instruction or
  combines two, through a short meta-prompt (in its chat template when it has one); the reply is
  cleaned and dropped unless it is readable text. These greedy generations are charged to the budget.
- ``format`` (off by default): the instruction on another library format.

Operators touch only the instruction; the format (input slot, answer cue) and demonstrations stay.
The stage ends after ``patience`` generations in which the best prompt of the run did not improve.
"""

from __future__ import annotations

import logging
from collections import Counter

from promptsearch.candidate import Candidate
from promptsearch.strategy import SearchContext, Strategy

from . import library
from . import mutations as mut

log = logging.getLogger(__name__)

OPERATORS = ("delete", "swap", "add", "paraphrase", "crossover", "model-paraphrase", "model-crossover")
ALL_OPERATORS = OPERATORS + ("format",)


class Evolution(Strategy):
    name = "evolution"
    description = "Evolve readable prompts: phrase edits, crossover and model-proposed rewrites, tournament selection."

    def __init__(self, population: int = 8, tournament: int = 3, elites: int = 2, patience: int = 4,
                 similarity: float = 0.9, operators: tuple = OPERATORS, library_seeds: int = 8,
                 meta_tokens: int = 40, max_generations: int = 50):
        unknown = [op for op in operators if op not in ALL_OPERATORS]
        if unknown:
            raise ValueError(f"unknown operator {unknown[0]!r}; choose from {', '.join(ALL_OPERATORS)}")
        if not operators:
            raise ValueError(f"operators must name at least one of {', '.join(ALL_OPERATORS)}")
        if population < 1 or tournament < 1 or patience < 1 or not 0 < similarity <= 1:
            raise ValueError("population, tournament and patience must be >= 1 and similarity in (0, 1]")
        self.population = population
        self.tournament = tournament
        self.elites = elites
        self.patience = patience
        self.similarity = similarity
        self.operators = tuple(operators)
        self.library_seeds = library_seeds
        self.meta_tokens = meta_tokens
        self.max_generations = max_generations

    # ---- protocol -----------------------------------------------------------------------------
    def start(self, context: SearchContext) -> None:
        self.generation = 0
        self.stale = 0
        self.meta_stats: Counter = Counter()  # asked / usable model proposals, for reports
        self._meta_cache: dict[str, str] = {}
        self._proposed: set[str] = set()
        self._best_key = self._top_key(context)
        self._queue = self._initial(context)

    def propose(self, context: SearchContext, n: int) -> list[Candidate]:
        known = self._known(context)
        self._queue = [c for c in self._queue if c.id not in known]
        if self._queue:
            batch, self._queue = self._queue[:n], self._queue[n:]
            self._proposed.update(c.id for c in batch)
            return batch
        if self.stale >= self.patience or self.generation >= self.max_generations:
            return []
        population = self.select_population(context)
        if not population:
            return []
        self.generation += 1
        children = self.breed(context, population, n)
        self._proposed.update(c.id for c in children)
        return children

    def observe(self, context: SearchContext, trials) -> None:
        key = self._top_key(context)
        if self._best_key is None or key > self._best_key:
            self._best_key = key
            self.stale = 0
        elif self.generation > 0:
            self.stale += 1

    # ---- population ---------------------------------------------------------------------------
    def select_population(self, ctx: SearchContext) -> list[Candidate]:
        """The best readable prompts of the run, skipping any too similar to a better member."""
        members: list[Candidate] = []
        for trial in ctx.leaderboard():
            c = trial.candidate
            if c.soft is not None:
                continue
            if all(mut.jaccard(_signature(c.prompt), _signature(m.prompt)) < self.similarity for m in members):
                members.append(c)
            if len(members) >= self.population:
                break
        return members

    def tournament_pick(self, ctx: SearchContext, population: list[Candidate]) -> Candidate:
        """The best (lowest rank) of ``tournament`` members drawn at random."""
        k = min(self.tournament, len(population))
        return population[min(ctx.rng.sample(range(len(population)), k))]

    def _initial(self, ctx: SearchContext) -> list[Candidate]:
        """Generation 0: variants of the best prompt so far on the library's formats and instructions."""
        base = ctx.stage_best[0] if ctx.stage_best else Candidate(ctx.task.seed_prompt)
        instruction, rest = mut.split_prompt(base.prompt)
        options = []
        if "\n\n" not in rest:  # no demonstrations rendered in the current format
            for fmt in library.formats(ctx.task):
                options.append((mut.join_prompt(instruction, fmt), "format"))
        for text in library.instructions(ctx.task):
            options.append((mut.join_prompt(text, rest), "instruction"))
        if self.library_seeds < len(options):
            options = ctx.rng.sample(options, self.library_seeds)
        out, seen = [], self._known(ctx)
        for prompt, edit in options:
            c = self._child(prompt, base, edit)
            if c is not None and c.id not in seen:
                seen.add(c.id)
                out.append(c)
        return out

    # ---- variation ----------------------------------------------------------------------------
    def breed(self, ctx: SearchContext, population: list[Candidate], n: int) -> list[Candidate]:
        """Up to n new, diverse children; model-operator requests are answered in one batch."""
        rng, known = ctx.rng, self._known(ctx)
        pool = self._phrase_pool(ctx, population)
        formats = library.formats(ctx.task)
        slots: list = []  # Candidate, or [op, first, second, meta message, child] awaiting the model
        for i in range(n):
            for _attempt in range(6):
                first = population[i] if i < min(self.elites, len(population)) else self.tournament_pick(ctx, population)
                op = self.operators[rng.randrange(len(self.operators))]
                second = self._mate(ctx, population, first)
                made = self._apply(ctx, op, first, second, pool, formats)
                if made is None:
                    continue
                if isinstance(made, list):  # a model request, answered below
                    slots.append(made)
                    break
                if self._fresh(made, known, population, slots):
                    slots.append(made)
                    break
        self._answer(ctx, slots)
        out = []
        for s in slots:
            c = s if isinstance(s, Candidate) else s[-1]
            if c is not None and self._fresh(c, known, population, out):
                out.append(c)
        return out

    def _mate(self, ctx: SearchContext, population: list[Candidate], first: Candidate) -> Candidate | None:
        others = [c for c in population if c.id != first.id]
        return self.tournament_pick(ctx, others) if others else None

    def _apply(self, ctx, op: str, first: Candidate, second: Candidate | None, pool: list[str], formats: list[str]):
        rng = ctx.rng
        if op == "delete":
            return self._child(mut.delete(first.prompt, rng), first, "delete")
        if op == "swap":
            return self._child(mut.swap(first.prompt, rng), first, "swap")
        if op == "add":
            if not pool:
                return None
            phrase = pool[rng.randrange(len(pool))]
            return self._child(mut.add(first.prompt, phrase, rng), first, f"add:{phrase}")
        if op == "paraphrase":
            got = mut.paraphrase(first.prompt, rng)
            return self._child(got[0], first, f"paraphrase:{got[1]}") if got else None
        if op == "crossover":
            if second is None:
                return None
            return self._child(mut.crossover(first.prompt, second.prompt, rng), first, "crossover", second)
        if op == "format":
            return self._child(mut.swap_format(first.prompt, formats[rng.randrange(len(formats))]), first, "format")
        instruction, _ = mut.split_prompt(first.prompt)
        if not instruction:
            return None
        if op == "model-paraphrase":
            return [op, first, None, mut.meta_paraphrase(instruction), None]
        if second is None:
            return None
        other, _ = mut.split_prompt(second.prompt)
        if not other or mut._norm(other) == mut._norm(instruction):
            return None
        return [op, first, second, mut.meta_crossover(instruction, other), None]

    def _answer(self, ctx: SearchContext, slots: list) -> None:
        """Run the model once over all pending meta-prompts (greedy, cached), charge it, fill the slots."""
        pending = [s for s in slots if isinstance(s, list)]
        if not pending:
            return
        texts = [self.meta_text(ctx, s[3]) for s in pending]
        todo = sorted({t for t in texts if t not in self._meta_cache})
        if todo:
            replies = ctx.scorer.complete(todo, max_new_tokens=self.meta_tokens)
            ctx.charge(len(todo))
            self._meta_cache.update(zip(todo, replies))
        for s, text in zip(pending, texts):
            op, first, second = s[0], s[1], s[2]
            instruction, rest = mut.split_prompt(first.prompt)
            self.meta_stats["asked"] += 1
            new = mut.clean_proposal(self._meta_cache[text], instruction)
            if new is None:
                log.debug("%s reply dropped: %r", op, self._meta_cache[text])
                continue
            child = self._child(mut.join_prompt(new, rest), first, op, second)
            if child is not None:
                self.meta_stats["usable"] += 1
                s[4] = child

    def meta_text(self, ctx: SearchContext, message: str) -> str:
        """The meta-prompt as the model reads it: its chat template when it has one, else plain text."""
        return mut.as_request(ctx.scorer.proposer, message)

    # ---- helpers ------------------------------------------------------------------------------
    def _child(self, prompt: str | None, first: Candidate, edit: str, second: Candidate | None = None):
        if not prompt or prompt == first.prompt:
            return None
        parents = (first.id,) + ((second.id,) if second is not None else ())
        return Candidate(prompt, first.label_words, strategy=self.name, parents=parents, edit=edit)

    def _fresh(self, child: Candidate, known: set[str], population: list[Candidate], siblings: list) -> bool:
        if child.id in known:
            return False
        sig = _signature(child.prompt)
        others = [m.prompt for m in population] + [s.prompt for s in siblings if isinstance(s, Candidate)]
        return all(mut.jaccard(sig, _signature(p)) < self.similarity for p in others)

    def _phrase_pool(self, ctx: SearchContext, population: list[Candidate]) -> list[str]:
        pool = []
        for c in population:
            pool.extend(mut.phrases(mut.split_prompt(c.prompt)[0]))
        pool.extend(library.clarifiers(ctx.task))
        return list(dict.fromkeys(p for p in pool if len(p.split()) >= 2))

    def _known(self, ctx: SearchContext) -> set[str]:
        return {t.candidate.id for t in ctx.leaderboard()} | self._proposed

    @staticmethod
    def _top_key(ctx: SearchContext):
        board = ctx.leaderboard()
        return board[0].sort_key()[:3] if board else None


def _signature(prompt: str) -> str:
    """What diversity is judged on: the instruction and the format, demonstrations left out."""
    instruction, rest = mut.split_prompt(prompt)
    return instruction + "\n" + rest.rsplit("\n\n", 1)[-1]
