"""AutoPrompt (Shin et al. 2020): gradient-guided trigger-token swapping, against a frozen causal LM.

The prompt is a template with trigger slots, e.g. ``{input} [T][T][T][T][T] Sentiment:``, either given
(``template``) or built from the best prompt so far with ``n_triggers`` slots at ``position``. Each
iteration, on a batch of train examples drawn from ``context.rng``:

1. the label loss (classification: cross-entropy over the label words' log-likelihoods, a word of
   several tokens counting the sum of its tokens; generation: the target's negative log-likelihood),
   minus ``fluency`` times the mean log-likelihood the model gives the trigger tokens in place, is
   differentiated with respect to the trigger tokens' *input embeddings* (a leaf tensor; the model's
   weights stay frozen);
2. for one trigger position, the ``top_k`` vocabulary tokens with the largest first-order loss
   decrease ``-(e_v - e_current) . grad`` (plus the exact change of the fluency term) become candidates;
   by default only whole-word alphabetic tokens with a leading space (``readable``);
3. each candidate is scored on the same batch with forward passes only; the best swap is kept if it
   lowers the loss, and the best ``proposals`` swaps go to the search as ordinary hard prompts, where
   racing on dev decides.

Classification tasks first try label words found by the LM-BFF search of the templates strategy on the
initial trigger prompt (``search_labels``); the best by dev is the verbalizer the triggers are tuned for.

Triggers are token ids but candidates are text: a trigger whose text does not re-encode to the same
token at the same place (checked on every batch example) is never proposed.
"""

from __future__ import annotations

import logging
import re

from promptsearch import template as tmpl
from promptsearch.candidate import Candidate
from promptsearch.errors import PromptSearchError
from promptsearch.models.base import require_white_box
from promptsearch.results import continuation
from promptsearch.strategy import SearchContext, Strategy

log = logging.getLogger(__name__)

MARK = "[T]"
POSITIONS = ("after_input", "before_input", "prefix")
_INPUT = object()  # the {input} slot in a piece list; an int is a trigger slot; a str is literal text
CHUNK_ROWS = 32  # rows per forward pass when scoring candidates


class AutoPrompt(Strategy):
    """Knobs (``-o autoprompt.NAME=VALUE``):

    n_triggers, position   trigger count and place (after_input, before_input, prefix) when the template
                           is built from the best prompt so far; ignored when ``template`` is given
    template               e.g. ``"{input} [T][T][T] Sentiment:"``; ``{input}`` required, one ``[T]`` per trigger
    init                   words the triggers start as (cycled), or ``"seed"``: the starting prompt's words
    top_k                  candidates per position (the gradient's best tokens), each scored by forward passes
    batch_size, iterations train examples per gradient step; gradient steps (one position each)
    proposals              best swaps of an iteration handed to the search (racing on dev picks)
    readable               restrict candidates to whole-word alphabetic tokens (default) or any token
    fluency                weight of the triggers' own log-likelihood in the loss (0: off)
    search_labels          first try LM-BFF label words on the initial trigger prompt (classification; off by default:
                           on SST-2 it proposed "negative/the", which won a small dev subset and lost on test)
    """

    name = "autoprompt"
    description = "AutoPrompt: gradient-guided trigger-token swaps, readable whole-word tokens by default."

    def __init__(self, n_triggers: int = 5, position: str = "after_input", template: str | None = None,
                 init: str = "the", top_k: int = 10, batch_size: int = 8, iterations: int = 10,
                 proposals: int = 2, readable: bool = True, fluency: float = 0.0, search_labels: bool = False,
                 label_candidates: int = 3, label_examples: int = 16):
        if int(n_triggers) < 1 or int(top_k) < 1 or int(batch_size) < 1 or int(iterations) < 0 or int(proposals) < 1:
            raise ValueError("n_triggers, top_k, batch_size and proposals must be >= 1, iterations >= 0")
        if position not in POSITIONS:
            raise ValueError(f"position must be one of {', '.join(POSITIONS)}, not {position!r}")
        if float(fluency) < 0:
            raise ValueError("fluency must be >= 0")
        if template is not None:  # said when the run is set up, not after its first stages
            if MARK not in template:
                raise ValueError(f"template {template!r} has no {MARK} trigger slot")
            tmpl.validate(template)
        if init != "seed" and not str(init).split():
            raise ValueError("init must be 'seed' or words whose tokens start the triggers, not an empty string")
        self.n_triggers = int(n_triggers)
        self.position = position
        self.template = template
        self.init = init
        self.top_k = int(top_k)
        self.batch_size = int(batch_size)
        self.iterations = int(iterations)
        self.proposals = int(proposals)
        self.readable = bool(readable)
        self.fluency = float(fluency)
        self.search_labels = bool(search_labels)
        self.label_candidates = int(label_candidates)
        self.label_examples = int(label_examples)

    # ---- strategy protocol -----------------------------------------------------------------------
    def start(self, context: SearchContext) -> None:
        require_white_box(context.scorer.model, "autoprompt", "gradients with respect to the input embeddings")
        task = context.task
        base = next((c for c in context.best(10) if c.soft is None), None) or Candidate(task.seed_prompt)
        self._base = base
        self.pieces = self.make_pieces(base.prompt)
        self.n = sum(isinstance(p, int) for p in self.pieces)
        self._mask = None
        self.label_words = (base.label_words or task.label_words) if task.kind == "classification" else ()
        self._model = context.scorer.model
        self.trigger_tokens: dict[str, list[int]] = {}  # prompt text -> its trigger token ids
        self.triggers = self.initial_triggers(context)
        self._queue: list[Candidate] = []
        self._iter = 0
        self._phase = "init"
        self._label_ids: list[str] = []
        self.current = self.candidate(task, self.triggers, parents=(base.id,), edit="initial triggers")
        self.history: list[dict] = []  # one record per iteration (batch loss, position, swap)

    def propose(self, context: SearchContext, n: int) -> list[Candidate]:
        while not self._queue and self._phase != "done":
            if self._phase == "init":
                self._queue = [self.current]
                if self.search_labels and context.task.kind == "classification":
                    self._queue += self._label_candidates(context)
                    self._label_ids = [c.id for c in self._queue]
                self._phase = "triggers"
            elif self._iter >= self.iterations or context.remaining_evals() < self._iteration_cost(context):
                self._phase = "done"
            else:
                if self._label_ids:  # the label words the triggers are tuned for: the best by dev
                    self._pick_label_words(context)
                self._queue = self.step(context)
        batch, self._queue = self._queue[:n], self._queue[n:]
        return batch

    # ---- the template ----------------------------------------------------------------------------
    def make_pieces(self, base_prompt: str) -> list:
        """The template as a list of literal strings, ``_INPUT`` and trigger indices 0..n-1. A single
        space right before a trigger is absorbed: trigger tokens carry their own leading space."""
        if self.template is not None:
            if MARK not in self.template:
                raise PromptSearchError(f"autoprompt template {self.template!r} has no {MARK} trigger slot")
            raw = tmpl.parse(self.template)
        else:
            raw = tmpl.parse(base_prompt)
            at = raw.index(None)
            marks = MARK * self.n_triggers
            if self.position == "after_input":
                raw = raw[: at + 1] + [marks + (raw[at + 1] or "")] + raw[at + 2:]
            elif self.position == "before_input":
                raw = raw[: at - 1] + [(raw[at - 1] or "") + marks + " "] + raw[at:]
            else:
                raw = [marks + "\n" + (raw[0] or "")] + raw[1:]
        pieces: list = []
        count = 0
        for part in raw:
            if part is None:
                pieces.append(_INPUT)
                continue
            chunks = part.split(MARK)
            for i, chunk in enumerate(chunks):
                if i < len(chunks) - 1 and chunk.endswith(" "):
                    chunk = chunk[:-1]
                if chunk:
                    pieces.append(chunk)
                if i < len(chunks) - 1:
                    pieces.append(count)
                    count += 1
        return pieces

    def prompt_text(self, model, triggers: list[int]) -> str:
        """The hard prompt (a template with ``{input}``) for these trigger tokens."""
        out = []
        for p in self.pieces:
            if p is _INPUT:
                out.append("{input}")
            elif isinstance(p, int):
                out.append(tmpl.escape(model.decode([triggers[p]])))
            else:
                out.append(tmpl.escape(p))
        return "".join(out)

    def candidate(self, task, triggers, parents=(), edit="") -> Candidate:
        words = tuple(self.label_words) if task.kind == "classification" else None
        if words == tuple(task.label_words):
            words = None
        cand = Candidate(self.prompt_text(self._model, triggers), words, strategy=self.name,
                         parents=tuple(parents), edit=edit)
        self.trigger_tokens[cand.prompt] = list(triggers)
        return cand

    def initial_triggers(self, ctx: SearchContext) -> list[int]:
        model = self._model
        if self.init == "seed":  # the words of the starting prompt, e.g. "Input", "Label"
            words = [w for p in self.pieces if isinstance(p, str) for w in re.findall(r"[A-Za-z]+", p)]
            ids = [t for t in (self._word_token(model, w) for w in words) if t is not None]
            ids = ids or [self._word_token(model, "the")]
        else:
            ids = []
            for w in str(self.init).split():
                t = self._word_token(model, w)
                if t is None:
                    raise PromptSearchError(f"autoprompt init word {w!r} is not a single token of this model")
                ids.append(t)
        if not ids or None in ids:
            raise PromptSearchError("autoprompt init gives no trigger token; pass init=WORD")
        return [ids[i % len(ids)] for i in range(self.n)]

    @staticmethod
    def _word_token(model, word: str) -> int | None:
        ids = model.encode(" " + word)
        return ids[0] if len(ids) == 1 else None

    # ---- label words (LM-BFF search of the templates strategy) -----------------------------------
    def _label_candidates(self, ctx: SearchContext) -> list[Candidate]:
        from .templates import TemplateEnumeration

        finder = TemplateEnumeration(label_candidates=self.label_candidates, label_examples=self.label_examples)
        finder.start(ctx)
        out = []
        for words in finder.label_words(ctx, self.current.prompt):
            out.append(Candidate(self.current.prompt, tuple(words), strategy=self.name,
                                 parents=(self.current.id,), edit="label words"))
        return out

    def _pick_label_words(self, ctx: SearchContext) -> None:
        ids, self._label_ids = set(self._label_ids), []
        best = next((t.candidate for t in ctx.leaderboard() if t.candidate.id in ids), None)
        if best is not None:
            self.label_words = best.label_words or ctx.task.label_words
            self.current = best
            log.info("autoprompt tunes triggers for label words %s", self.label_words)

    # ---- one AutoPrompt iteration -----------------------------------------------------------------
    def _iteration_cost(self, ctx) -> int:
        rows = self.batch_size * self._rows_per_example(ctx)
        return 3 * rows + self.top_k * rows

    def _rows_per_example(self, ctx) -> int:
        if ctx.task.kind != "classification":
            return 1
        multi = sum(len(self._model.encode(" " + w)) > 1 for w in self.label_words)
        return max(1, multi)

    def draw_batch(self, ctx: SearchContext) -> list:
        train = list(ctx.task.train)
        return ctx.rng.sample(train, min(self.batch_size, len(train)))

    def step(self, ctx: SearchContext) -> list[Candidate]:
        """One iteration: gradient, candidates for one position, forward-only scoring, keep the best."""
        import torch

        self._iter += 1
        task, model = ctx.task, self._model
        batch = self.draw_batch(ctx)
        rows = self.rows(ctx, self.triggers, batch)
        if not rows:
            log.warning("autoprompt: the current triggers do not re-encode on this batch; iteration skipped")
            return []
        j = ctx.rng.randrange(self.n)
        scores, loss = self.first_order(ctx, rows, j)
        ctx.charge(3 * len(rows))
        allowed = self.vocab_mask(model, scores.shape[0])
        scores = scores.masked_fill(~allowed, -float("inf"))
        scores[self.triggers[j]] = -float("inf")
        order = torch.argsort(scores, descending=True, stable=True).tolist()
        picked = []
        for tried, tok in enumerate(order):
            if len(picked) >= self.top_k or tried >= 5 * self.top_k or scores[tok] == -float("inf"):
                break
            trig = list(self.triggers)
            trig[j] = tok
            cand_rows = self.rows(ctx, trig, batch)
            if [r["source"] for r in cand_rows] == [r["source"] for r in rows]:  # the token re-encodes in place
                picked.append((tok, cand_rows))
        if not picked:
            return []
        losses = self.objective(ctx, [r for _, rs in picked for r in rs])
        ctx.charge(len(rows) * len(picked))
        per = sum(r["fluent"] for r in rows)
        cand_losses = [sum(losses[i * per:(i + 1) * per]) / per for i in range(len(picked))]
        ranked = sorted(((l_, i) for i, l_ in enumerate(cand_losses) if l_ < loss), key=lambda x: (x[0], x[1]))
        old = model.decode([self.triggers[j]])
        record = {"iteration": self._iter, "position": j, "loss": loss, "candidates": len(picked),
                  "best_candidate_loss": min(cand_losses)}
        out = []
        parent = self.current
        for rank, (l_, i) in enumerate(ranked[: self.proposals]):
            tok = picked[i][0]
            trig = list(self.triggers)
            trig[j] = tok
            edit = f"swap {j}: {old!r}->{model.decode([tok])!r} (batch loss {loss:.3f}->{l_:.3f})"
            out.append(self.candidate(task, trig, parents=(parent.id,), edit=edit))
            if rank == 0:
                self.triggers, self.current = trig, out[0]
                record["swap"] = edit
        self.history.append(record)
        log.info("autoprompt iteration %d: %s", self._iter, record.get("swap", "no swap lowered the loss"))
        return out

    # ---- rows, forward passes, gradients ---------------------------------------------------------
    def rows(self, ctx: SearchContext, triggers: list[int], examples) -> list[dict]:
        """Token rows for the examples under these triggers: ids, the trigger positions, and the
        (position, token, example, slot) log-likelihoods to read. An example whose rendered prompt does
        not put every trigger token back at its place is left out."""
        model, scorer, task = self._model, ctx.scorer, ctx.task
        texts = [model.decode([t]) for t in triggers]
        out = []
        kept = 0
        for source, ex in enumerate(examples):
            plain, starts = "", [0] * self.n
            for p in self.pieces:
                if p is _INPUT:
                    plain += ex.input
                elif isinstance(p, int):
                    starts[p] = len(plain)
                    plain += texts[p]
                else:
                    plain += p
            full = scorer.render(tmpl.escape(plain) + "{input}", "") if scorer.chat else plain
            base = full.find(plain)
            ids = model.encode_context(full)
            positions = []
            for k in range(self.n):
                head = model.encode_context(full[: base + starts[k]])
                at = len(head)
                if at >= len(ids) or ids[:at] != head or ids[at] != triggers[k]:
                    break
                positions.append(at)
            if len(positions) < self.n or not ids:
                continue
            if task.kind == "classification":
                conts = [model.encode(continuation(full, w)) for w in self.label_words]
                gold = ex.label
            else:
                conts = [model.encode(continuation(full, ex.output))]
                gold = 0
            last = len(ids) - 1
            singles = [(s, c[0]) for s, c in enumerate(conts) if len(c) == 1]
            multis = [(s, c) for s, c in enumerate(conts) if len(c) > 1]
            first = True
            for s, c in multis or [(None, [])]:
                targets = [(last, t, s2) for s2, t in singles] if first else []
                if s is not None:
                    targets += [(last + i, c[i], s) for i in range(len(c))]
                out.append({"ids": ids + (c[:-1] if s is not None else []), "pos": positions, "targets": targets,
                            "example": kept, "source": source, "gold": gold, "fluent": first, "n_slots": len(conts)})
                first = False
            kept += 1
        return out

    def _forward(self, ctx, rows, trigger_embeds=None, vocab_at=None):
        """One forward pass over rows (their ``example`` indices 0..m-1, contiguous). Returns the label
        log-likelihood sums (m x n_slots), each example's fluency (mean log-probability of its trigger
        tokens in place), the gold slots, and optionally the mean next-token log-probs before trigger
        ``vocab_at``. Differentiable w.r.t. ``trigger_embeds`` (n x hidden), which replace the trigger
        tokens' input embeddings; the weights are never touched."""
        import torch

        lm = self._model.model
        device = lm.device
        width = max(len(r["ids"]) for r in rows)
        ids = torch.full((len(rows), width), self._model.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r["ids"])] = torch.tensor(r["ids"])
            mask[b, : len(r["ids"])] = 1
        ids, mask = ids.to(device), mask.to(device)
        embeds = lm.get_input_embeddings()(ids)
        if trigger_embeds is not None:
            rr = torch.tensor([b for b, r in enumerate(rows) for _ in r["pos"]], device=device)
            pp = torch.tensor([p for r in rows for p in r["pos"]], device=device)
            jj = torch.tensor([j for r in rows for j in range(len(r["pos"]))], device=device)
            embeds = embeds.clone()
            embeds[rr, pp] = trigger_embeds[jj].to(embeds.dtype)
        hidden = lm.base_model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        m, n_slots = rows[-1]["example"] + 1, rows[0]["n_slots"]
        picks, tokens, label_slot, fluent_of, vocab_rows = [], [], [], [], []
        golds = [0] * m
        for b, r in enumerate(rows):
            golds[r["example"]] = r["gold"]
            for p, t, s in r["targets"]:
                picks.append((b, p))
                tokens.append(t)
                label_slot.append(r["example"] * n_slots + s)
                fluent_of.append(-1)
            if r["fluent"]:
                for k, p in enumerate(r["pos"]):
                    if p > 0:
                        if k == vocab_at:
                            vocab_rows.append(len(picks))
                        picks.append((b, p - 1))
                        tokens.append(r["ids"][p])
                        label_slot.append(-1)
                        fluent_of.append(r["example"])
        idx_b = torch.tensor([b for b, _ in picks], device=device)
        idx_p = torch.tensor([p for _, p in picks], device=device)
        logprobs = self._model.head_logprobs(hidden[idx_b, idx_p])
        values = logprobs[torch.arange(len(picks), device=device), torch.tensor(tokens, device=device)]
        is_label = torch.tensor([s >= 0 for s in label_slot], device=device)
        slots = torch.tensor([max(s, 0) for s in label_slot], device=device)
        label = values.new_zeros(m * n_slots).index_add(0, slots[is_label], values[is_label]).view(m, n_slots)
        owners = torch.tensor([max(e, 0) for e in fluent_of], device=device)
        is_fluent = ~is_label
        sums = values.new_zeros(m).index_add(0, owners[is_fluent], values[is_fluent])
        counts = values.new_zeros(m).index_add(0, owners[is_fluent], torch.ones_like(values[is_fluent]))
        fluent = sums / counts.clamp(min=1)
        vocab = logprobs[vocab_rows].mean(0) if vocab_rows else None
        return label, fluent, golds, vocab

    def _losses(self, ctx, label, fluent, golds):
        """Per-example objective: label loss minus ``fluency`` times the triggers' log-likelihood."""
        import torch

        gold = torch.tensor(golds, device=label.device)
        picked = label.gather(1, gold[:, None])[:, 0]
        nll = torch.logsumexp(label, dim=1) - picked if ctx.task.kind == "classification" else -picked
        return nll - self.fluency * fluent

    def objective(self, ctx, rows, trigger_embeds=None) -> list[float]:
        """Per-example objective of rows (forward passes only). Rows of several trigger settings may be
        stacked: each run of rows starting with a ``fluent`` one is an example of its own."""
        import torch

        groups: list[list[dict]] = []
        for r in rows:
            if r["fluent"] or not groups:
                groups.append([])
            groups[-1].append(r)
        out: list[float] = []
        with torch.no_grad():
            chunk: list[list[dict]] = []
            for i, group in enumerate(groups):
                chunk.append(group)
                if sum(map(len, chunk)) >= CHUNK_ROWS or i + 1 == len(groups):
                    flat = [{**r, "example": e} for e, g in enumerate(chunk) for r in g]
                    label, fluent, golds, _ = self._forward(ctx, flat, trigger_embeds)
                    out += self._losses(ctx, label, fluent, golds).tolist()
                    chunk = []
        return out

    def first_order(self, ctx, rows, j: int):
        """Estimated loss decrease of putting each vocabulary token at trigger ``j`` (first order in the
        input embedding; the fluency term's output side exactly), and the current batch loss."""
        import torch

        emb = self._model.input_embeddings().weight
        # Under bf16 the gradient and the vocabulary dot products are taken in float32 at least (the
        # forward casts the leaf to the model's dtype): bf16's 8-bit mantissa would tie most of the
        # first-order estimates the candidate tokens are ranked by.
        emb = emb.to(torch.promote_types(emb.dtype, torch.float32))
        leaf = emb[torch.tensor(self.triggers, device=emb.device)].detach().clone().requires_grad_(True)
        label, fluent, golds, vocab = self._forward(ctx, rows, leaf, vocab_at=j if self.fluency else None)
        losses = self._losses(ctx, label, fluent, golds)
        loss = losses.mean()
        (grad,) = torch.autograd.grad(loss, leaf)
        with torch.no_grad():
            g = grad[j]
            scores = -(emb @ g) + (emb[self.triggers[j]] @ g)
            if self.fluency and vocab is not None:
                n_terms = max(1, sum(1 for p in rows[0]["pos"] if p > 0))
                scores = scores + self.fluency * (vocab - vocab[self.triggers[j]]) / n_terms
        scores = scores if scores.dtype == torch.float64 else scores.float()
        return scores.cpu(), float(loss.detach())

    # ---- the candidate vocabulary ------------------------------------------------------------------
    def vocab_mask(self, model, size: int):
        """Tokens a trigger may take: not special, decoding to text that encodes back to the same one
        token; with ``readable``, a leading space and then ASCII letters only (a whole word)."""
        import torch

        if self._mask is not None and self._mask.shape[0] == size:
            return self._mask
        tok = model.tokenizer
        special = set(tok.all_special_ids)
        ok = torch.zeros(size, dtype=torch.bool)
        n = min(size, len(tok))
        texts = tok.batch_decode([[i] for i in range(n)])
        if self.readable:
            keep = [i for i, t in enumerate(texts) if len(t) > 1 and t[0] == " " and t[1:].isascii() and t[1:].isalpha()]
        else:
            keep = [i for i, t in enumerate(texts) if t and "\ufffd" not in t]
        keep = [i for i in keep if i not in special]
        encoded = tok([texts[i] for i in keep], add_special_tokens=False)["input_ids"]
        for i, enc in zip(keep, encoded):
            if enc == [i]:
                ok[i] = True
        self._mask = ok
        return ok
