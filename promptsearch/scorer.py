"""The scorer: per-example scores of a prompt on examples, batched, prefix-shared and cached.

Classification reads the log-likelihood of every label word after the rendered prompt; generation
decodes greedily (exact match) or reads the target's log-likelihood. Three things make it fast:
- one forward pass per example serves all one-token label words (longer ones add one row each);
- the token prefix every row shares (instruction, demonstrations) runs once per call and its
  key/value cache is reused by every batch; rows are right-padded and length-sorted, so real
  tokens never see padding and no attention mask is needed;
- the LM head runs only at the positions whose next-token distribution is read.
Results are cached per (model, mode, prompt, label words, soft prompt, example), so no pair is
computed twice in a process.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from . import template
from .errors import PromptSearchError, TooLongError


@dataclass(frozen=True)
class ExampleResult:
    score: float  # this example's share of the metric: 1/0 for accuracy and exact match
    prediction: str  # the predicted label word or generated answer
    logprob: float = math.nan  # log-likelihood of the gold answer, where computed
    label_logprobs: tuple[float, ...] = ()  # classification: one per label word

    def to_json(self) -> list:
        return [self.score, self.prediction, None if math.isnan(self.logprob) else self.logprob, list(self.label_logprobs)]

    @classmethod
    def from_json(cls, row: list) -> "ExampleResult":
        return cls(row[0], row[1], math.nan if row[2] is None else row[2], tuple(row[3]))


def continuation(context: str, answer: str) -> str:
    """The answer as it follows the context: after a space unless the context ends in white space."""
    return answer if not context or context[-1].isspace() else " " + answer


def first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0].strip() if text else ""


class Scorer:
    """Scores prompts against one frozen model. ``stats`` counts rows run and cache hits."""

    def __init__(self, model, batch_size: int = 16, max_batch_tokens: int = 8192, chat: bool = False):
        self.model = model
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.chat = chat
        self.cache: dict[tuple, ExampleResult] = {}
        self.soft_prompts: dict[str, object] = {}
        self.stats: Counter = Counter()
        self._newline_ids: set[int] | None = None
        self._max_new: dict[str, int] = {}

    # ---- public API -------------------------------------------------------------------------
    def render(self, prompt: str, text: str) -> str:
        rendered = template.render(prompt, text)
        if not self.chat:
            return rendered
        return self.model.tokenizer.apply_chat_template(
            [{"role": "user", "content": rendered}], tokenize=False, add_generation_prompt=True
        )

    def register_soft_prompt(self, soft_id: str, embeddings) -> None:
        """Make a trained soft prompt (n_virtual x hidden tensor) usable by candidates naming it."""
        self.soft_prompts[soft_id] = embeddings.detach().to(self.model.device, self.model.dtype)

    def clear_cache(self) -> None:
        self.cache.clear()

    def mode(self, task, candidate) -> tuple[str, object]:
        """How a candidate is scored on a task: (mode, the setting its results depend on)."""
        if task.kind == "classification":
            return "classify", tuple(candidate.label_words or task.label_words)
        if task.metric == "loglik":
            return "loglik", None
        return "generate", self.max_new_tokens(task)

    def keys(self, task, candidate, example_keys) -> list[tuple]:
        mode, extra = self.mode(task, candidate)
        return [(self.model.fingerprint, self.chat, mode, candidate.prompt, extra, candidate.soft, k) for k in example_keys]

    def preload(self, task, candidate, results: dict[str, ExampleResult]) -> None:
        """Put results read back from a run log into the cache (resume scores nothing twice)."""
        for key, result in zip(self.keys(task, candidate, list(results)), results.values()):
            self.cache[key] = result

    def evaluate(self, task, candidate, examples) -> list[ExampleResult]:
        """Per-example results of a candidate on examples, by the task's metric; cached."""
        mode, extra = self.mode(task, candidate)
        keys = self.keys(task, candidate, [ex.key for ex in examples])
        missing = [i for i, k in enumerate(keys) if k not in self.cache]
        self.stats["cache_hits"] += len(examples) - len(missing)
        if missing:
            todo = [examples[i] for i in missing]
            soft = self._soft(candidate.soft)
            if mode == "classify":
                fresh = self.classify(candidate.prompt, todo, extra, soft=soft)
            elif mode == "loglik":
                fresh = self.target_loglik(candidate.prompt, todo, soft=soft)
            else:
                fresh = self.generate(candidate.prompt, todo, extra, soft=soft, metric=task.metric)
            for i, result in zip(missing, fresh):
                self.cache[keys[i]] = result
            self.stats["examples_scored"] += len(missing)
        return [self.cache[k] for k in keys]

    def classify(self, prompt: str, examples, label_words, soft=None) -> list[ExampleResult]:
        contexts = [self.render(prompt, ex.input) for ex in examples]
        conts = [[continuation(c, w) for w in label_words] for c in contexts]
        scores = self.loglikelihoods(contexts, conts, soft=soft, ids=[ex.id for ex in examples])
        out = []
        for ex, lps in zip(examples, scores):
            best = max(range(len(lps)), key=lps.__getitem__)
            gold = lps[ex.label] if ex.label is not None else math.nan
            out.append(ExampleResult(float(best == ex.label), label_words[best], gold, tuple(lps)))
        return out

    def target_loglik(self, prompt: str, examples, soft=None) -> list[ExampleResult]:
        contexts = [self.render(prompt, ex.input) for ex in examples]
        conts = [[continuation(c, ex.output)] for c, ex in zip(contexts, examples)]
        scores = self.loglikelihoods(contexts, conts, soft=soft, ids=[ex.id for ex in examples])
        return [ExampleResult(s[0], "", s[0]) for s in scores]

    def loglikelihoods(self, contexts: list[str], continuations: list[list[str]], soft=None, ids=None) -> list[list[float]]:
        """log P(continuation | context) for each context and each of its continuations."""
        ctx_tokens = [self.model.encode(c) for c in contexts]
        cont_tokens = [[self.model.encode(k) for k in ks] for ks in continuations]
        rows, queries, owners = [], [], []
        for i, (ctx, ks) in enumerate(zip(ctx_tokens, cont_tokens)):
            if not ctx:
                raise PromptSearchError("a rendered prompt is empty; the template needs some text")
            last = len(ctx) - 1
            singles = [(j, k[0]) for j, k in enumerate(ks) if len(k) == 1]
            multis = [(j, k) for j, k in enumerate(ks) if len(k) > 1]
            for j, k in enumerate(ks):
                if not k:
                    raise PromptSearchError(f"continuation {continuations[i][j]!r} encodes to no tokens")
            first = True
            for j, k in multis or [(None, [])]:
                q = []
                if first and singles:
                    q.append((last, [t for _, t in singles], [(i, jj) for jj, _ in singles]))
                first = False
                if j is not None:
                    q.extend((last + t, [k[t]], [(i, j)]) for t in range(len(k)))
                rows.append(ctx + k[:-1])
                queries.append(q)
                owners.append(ids[i] if ids else i)
        self._check_lengths(rows, owners, soft)
        sums = [[0.0] * len(ks) for ks in cont_tokens]
        for q_rows, values in zip(queries, self._query_rows(rows, queries, soft)):
            for (_, _, slots), vals in zip(q_rows, values):
                for (i, j), v in zip(slots, vals):
                    sums[i][j] += v
        return sums

    def next_token_logprobs(self, contexts: list[str]):
        """The whole next-token log-probability distribution after each context (N x vocab)."""
        import torch

        rows = [self.model.encode(c) for c in contexts]
        queries = [[(len(r) - 1, None, None)] for r in rows]
        return torch.stack([vals[0] for vals in self._query_rows(rows, queries, None)])

    def generate(self, prompt: str, examples, max_new_tokens: int, soft=None, metric: str = "exact_match") -> list[ExampleResult]:
        contexts = [self.render(prompt, ex.input) for ex in examples]
        rows = [self.model.encode(c) for c in contexts]
        self._check_lengths([r + [0] * max_new_tokens for r in rows], [ex.id for ex in examples], soft)
        texts = self._greedy(rows, max_new_tokens, soft)
        out = []
        for ex, text in zip(examples, texts):
            pred = first_line(text)
            answers = [a.strip().lower() for a in ex.answers]
            p = pred.lower()
            hit = p in answers if metric == "exact_match" else any(a and a in p for a in answers)
            out.append(ExampleResult(float(hit), pred))
        return out

    def complete(self, texts: list[str], max_new_tokens: int = 48) -> list[str]:
        """Free greedy continuation of raw texts (no template): the first line of each, stripped.
        Used by strategies that ask the model itself for paraphrases."""
        rows = [self.model.encode(t) for t in texts]
        self._check_lengths([r + [0] * max_new_tokens for r in rows], list(range(len(rows))), None)
        return [first_line(t) for t in self._greedy(rows, max_new_tokens, None)]

    def max_new_tokens(self, task) -> int:
        """Room for the longest answer in train/dev plus a little, so greedy output is not cut short."""
        if task.name not in self._max_new:
            longest = max(len(self.model.encode(" " + a)) for ex in task.train + task.dev for a in ex.answers)
            self._max_new[task.name] = min(64, longest + 4)
        return self._max_new[task.name]

    # ---- internals --------------------------------------------------------------------------
    def _soft(self, soft_id):
        if soft_id is None:
            return None
        if soft_id not in self.soft_prompts:
            raise PromptSearchError(f"soft prompt {soft_id!r} is not loaded in this scorer")
        return self.soft_prompts[soft_id]

    def _check_lengths(self, rows, owners, soft) -> None:
        limit = self.model.max_length - (0 if soft is None else soft.shape[0])
        for row, owner in zip(rows, owners):
            if len(row) > limit:
                raise TooLongError(
                    f"example {owner}: prompt and answer take {len(row)} tokens, over the model's context of {limit}"
                )

    def _query_rows(self, rows, queries, soft):
        """For each row, for each query (position, target ids, _), the log-probs of the targets."""
        import torch

        lm = self.model.model
        head = lm.get_output_embeddings()
        softcap = getattr(lm.config, "final_logit_softcapping", None)
        shared = _common_prefix_length(rows)
        # Every queried position must lie after the shared prefix, in the part each row runs itself.
        shared = min([shared] + [min(p for p, _, _ in q) for q in queries if q])
        prefix_cache, offset = self._prefix_cache(rows[0][:shared], soft)
        results: list = [None] * len(rows)
        order = sorted(range(len(rows)), key=lambda r: len(rows[r]))
        with torch.inference_mode():
            for batch in self._batches(order, rows, shared):
                width = max(len(rows[r]) - shared for r in batch)
                ids = torch.full((len(batch), width), self.model.pad_id, dtype=torch.long)
                for b, r in enumerate(batch):
                    rest = rows[r][shared:]
                    ids[b, : len(rest)] = torch.tensor(rest)
                positions = torch.arange(offset, offset + width).unsqueeze(0).expand(len(batch), -1)
                kwargs = {}
                if prefix_cache is not None:
                    kwargs = {_cache_kwarg(lm): _repeat_cache(prefix_cache, len(batch)), "use_cache": True}
                hidden = lm.base_model(
                    input_ids=ids.to(self.model.device), position_ids=positions.to(self.model.device), **kwargs
                ).last_hidden_state
                picks = [(b, p - shared) for b, r in enumerate(batch) for p, _, _ in queries[r]]
                if not picks:
                    continue
                idx_b = torch.tensor([b for b, _ in picks], device=hidden.device)
                idx_p = torch.tensor([p for _, p in picks], device=hidden.device)
                logits = head(hidden[idx_b, idx_p]).float()
                if softcap:
                    logits = torch.tanh(logits / softcap) * softcap
                logprobs = torch.log_softmax(logits, dim=-1).cpu()
                k = 0
                for r in batch:
                    vals = []
                    for _, targets, _ in queries[r]:
                        vals.append(logprobs[k] if targets is None else logprobs[k, targets].tolist())
                        k += 1
                    results[r] = vals
                self.stats["rows"] += len(batch)
                self.stats["forward_passes"] += 1
        return results

    def _prefix_cache(self, prefix: list[int], soft):
        """Run the shared prefix (soft prompt first, if any) once; return its cache and length."""
        import torch

        n_soft = 0 if soft is None else soft.shape[0]
        if not prefix and soft is None:
            return None, 0
        lm = self.model.model
        with torch.inference_mode():
            ids = torch.tensor([prefix], dtype=torch.long, device=self.model.device)
            embeds = lm.get_input_embeddings()(ids)
            if soft is not None:
                embeds = torch.cat([soft.unsqueeze(0), embeds], dim=1)
            out = lm.base_model(inputs_embeds=embeds, use_cache=True)
        self.stats["prefix_tokens"] += len(prefix) + n_soft
        cache = getattr(out, "cache", None) if "cache" in out else out.past_key_values
        return cache, len(prefix) + n_soft

    def _batches(self, order, rows, shared):
        batch, width = [], 0
        for r in order:
            w = max(width, len(rows[r]) - shared)
            if batch and (len(batch) >= self.batch_size or w * (len(batch) + 1) > self.max_batch_tokens):
                yield batch
                batch, w = [], len(rows[r]) - shared
            batch.append(r)
            width = w
        if batch:
            yield batch

    def _greedy(self, rows, max_new_tokens: int, soft) -> list[str]:
        """Greedy decoding, left-padded batches, stopping once every row has finished a line."""
        import torch

        lm = self.model.model
        stop_ids = self._line_end_ids()
        order = sorted(range(len(rows)), key=lambda r: len(rows[r]))
        texts: list = [None] * len(rows)
        n_soft = 0 if soft is None else soft.shape[0]
        with torch.inference_mode():
            for batch in self._batches(order, rows, 0):
                width = max(len(rows[r]) for r in batch)
                ids = torch.full((len(batch), width), self.model.pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width + n_soft), dtype=torch.long)
                for b, r in enumerate(batch):
                    ids[b, width - len(rows[r]) :] = torch.tensor(rows[r])
                    mask[b, width - len(rows[r]) :] = 1
                ids, mask = ids.to(lm.device), mask.to(lm.device)
                kwargs = dict(attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                              pad_token_id=self.model.pad_id, stopping_criteria=[_LineEnd(stop_ids)])
                if soft is None:
                    new = lm.generate(input_ids=ids, **kwargs)[:, width:]
                else:
                    # The soft prompt sits right before each row's first real token.
                    embeds = lm.get_input_embeddings()(ids)
                    pieces = [torch.cat([embeds[b, : width - len(rows[r])], soft, embeds[b, width - len(rows[r]):]])
                              for b, r in enumerate(batch)]
                    new = lm.generate(inputs_embeds=torch.stack(pieces), **kwargs)
                for b, r in enumerate(batch):
                    texts[r] = self.model.decode(new[b].tolist())
                self.stats["rows"] += len(batch)
                self.stats["forward_passes"] += 1
        return texts

    def _line_end_ids(self) -> set[int]:
        if self._newline_ids is None:
            tok = self.model.tokenizer
            vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
            ids = {i for i, t in enumerate(vocab) if t and ("\n" in t or "Ċ" in t or "<0x0A>" in t)}
            ids |= {t for t in (tok.eos_token_id, self.model.pad_id) if t is not None}
            self._newline_ids = ids
        return self._newline_ids


class _LineEnd:
    """Stop generating once every row has produced a line end (the answer is the first line)."""

    def __init__(self, stop_ids: set[int]):
        self.stop_ids = stop_ids
        self.done = None

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        last = input_ids[:, -1].tolist()
        hit = torch.tensor([t in self.stop_ids for t in last], device=input_ids.device)
        self.done = hit if self.done is None else (self.done | hit)
        return self.done


def _common_prefix_length(rows: list[list[int]]) -> int:
    first = rows[0]
    n = min(len(r) for r in rows)
    for r in rows[1:]:
        i = 0
        while i < n and r[i] == first[i]:
            i += 1
        n = i
    return n


def _cache_kwarg(lm) -> str:
    """transformers 5.x renamed ``past_key_values`` to ``cache``; accept either."""
    import inspect

    return "cache" if "cache" in inspect.signature(lm.base_model.forward).parameters else "past_key_values"


def _repeat_cache(cache, batch_size: int):
    """A fresh copy of a batch-1 key/value cache, repeated to the batch (forward extends it in place)."""
    import copy

    fresh = copy.deepcopy(cache)
    if batch_size > 1:
        fresh.batch_repeat_interleave(batch_size)
    return fresh
