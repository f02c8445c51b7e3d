"""The scorer: per-example scores of a prompt on examples, batched, prefix-shared and cached.

Classification reads the log-likelihood of every label word after the rendered prompt; generation
decodes greedily (exact match) or reads the target's log-likelihood. What makes it fast:
- one row, one forward pass per example serves all its label words: the context's last position
  predicts every word's first token, and the other tokens of longer words are packed after the
  context, each word attending to the context and to itself only (a per-row attention mask);
- the token prefix every row shares (instruction, demonstrations) runs once and its key/value cache
  is reused by every batch; the last few prefixes are kept, so later calls with the same prompt
  (racing rungs, the test split) skip it; rows are right-padded and length-sorted, so real tokens
  never see padding;
- the LM head runs only at the positions whose next-token distribution is read.
benchmarks/bench_scorer.py measures this against a naive loop and lm-evaluation-harness.
Results are cached per (model, mode, prompt, label words, soft prompt, example), so no pair is
computed twice in a process.

All of the above is the in-process path, taken when the model is white-box (``capabilities.white_box``).
A served model (models/served.py) computes log-likelihoods and greedy answers itself, over HTTP; the
scorer hands it the rendered texts and keeps the rest (metrics, caching, keys) the same.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter, OrderedDict
from dataclasses import dataclass

from . import calibration, demos, template
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
    def from_json(cls, row: list) -> ExampleResult:
        return cls(row[0], row[1], math.nan if row[2] is None else row[2], tuple(row[3]))


def continuation(context: str, answer: str) -> str:
    """The answer as it follows the context: after a space unless the context ends in white space."""
    return answer if not context or context[-1].isspace() else " " + answer


def first_line(text: str) -> str:
    text = text.strip()
    return text.splitlines()[0].strip() if text else ""


class Scorer:
    """Scores prompts against one frozen model. ``stats`` counts rows run and cache hits."""

    kept_prefixes = 4  # shared-prefix key/value caches kept across calls (SmolLM2: ~46 KB a token)

    def __init__(self, model, batch_size: int = 16, max_batch_tokens: int = 8192, chat: bool = False, proposer=None):
        self.model = model
        self.proposer = proposer if proposer is not None else model  # writes text for the search (complete)
        self._proposer_scorer = None
        self.white_box = getattr(getattr(model, "capabilities", None), "white_box", True)
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.chat = chat
        self.cache: dict[tuple, ExampleResult] = {}
        self.soft_prompts: dict[str, object] = {}
        self.stats: Counter = Counter()
        self._newline_ids: set[int] | None = None
        self._max_new: dict[str, int] = {}
        self._prefixes: OrderedDict[tuple, object] = OrderedDict()  # prefix tokens -> key/value cache

    # ---- public API -------------------------------------------------------------------------
    def render(self, prompt: str, text: str) -> str:
        rendered = template.render(prompt, text)
        if not self.chat or not self.white_box:  # a served model's chat template is applied by its server
            return rendered
        return self.model.tokenizer.apply_chat_template(
            [{"role": "user", "content": rendered}], tokenize=False, add_generation_prompt=True
        )

    def contexts(self, prompt: str | list[str], examples) -> list[str]:
        """Each example rendered in the prompt, or in its own prompt when given one per example."""
        prompts = [prompt] * len(examples) if isinstance(prompt, str) else prompt
        return [self.render(p, ex.input) for p, ex in zip(prompts, examples)]

    def register_soft_prompt(self, soft_id: str, embeddings) -> None:
        """Make a trained soft prompt (n_virtual x hidden tensor) usable by candidates naming it. New
        vectors under a known name drop the cached scores of the old ones (soft prefixes are never kept)."""
        import torch

        if not self.white_box:
            raise PromptSearchError(f"soft prompts need the model's embeddings in process; {self.model.name} is served")
        new = embeddings.detach().to(self.model.device, self.model.dtype)
        old = self.soft_prompts.get(soft_id)
        if old is not None and not torch.equal(old, new):
            for key in [k for k in self.cache if k[5] == soft_id]:  # k[5]: candidate.soft, see keys()
                del self.cache[key]
        self.soft_prompts[soft_id] = new

    def clear_cache(self) -> None:
        self.cache.clear()
        self._prefixes.clear()

    def mode(self, task, candidate) -> tuple[str, object]:
        """How a candidate is scored on a task: (mode, the setting its results depend on)."""
        if task.kind == "classification":
            return "classify", tuple(candidate.label_words or task.label_words)
        if task.metric == "loglik":
            return "loglik", None
        return "generate", self.max_new_tokens(task)

    def keys(self, task, candidate, example_keys) -> list[tuple]:
        mode, extra = self.mode(task, candidate)
        options = candidate.options()  # calibration, demonstration rule, ensemble members: they change the scores
        options = json.dumps(options, sort_keys=True) if options else None
        return [(self.model.fingerprint, self.chat, mode, candidate.prompt, extra, candidate.soft, options, k)
                for k in example_keys]

    def preload(self, task, candidate, results: dict[str, ExampleResult]) -> None:
        """Put results read back from a run log into the cache (resume scores nothing twice)."""
        for key, result in zip(self.keys(task, candidate, list(results)), results.values()):
            self.cache[key] = result

    def evaluate(self, task, candidate, examples) -> list[ExampleResult]:
        """Per-example results of a candidate on examples, by the task's metric; cached."""
        if candidate.calibrate:  # corrected from the plain prompt's label scores (calibration.py)
            return calibration.evaluate(self, task, candidate, examples)
        mode, extra = self.mode(task, candidate)
        keys = self.keys(task, candidate, [ex.key for ex in examples])
        missing = [i for i, k in enumerate(keys) if k not in self.cache]
        self.stats["cache_hits"] += len(examples) - len(missing)
        if missing:
            todo = [examples[i] for i in missing]
            soft = self._soft(candidate.soft)
            # a demonstration rule (demos.py) puts train examples in front: one prompt, or one per example
            prompt = demos.prompts(task, candidate, todo) if candidate.demos else candidate.prompt
            if candidate.members:  # an ensemble: its members scored through this scorer, combined (ensemble.py)
                from .ensemble import evaluate as evaluate_ensemble

                fresh = evaluate_ensemble(self, task, candidate, todo)
            elif mode == "classify":
                fresh = self.classify(prompt, todo, extra, soft=soft)
            elif mode == "loglik":
                fresh = self.target_loglik(prompt, todo, soft=soft)
            else:
                fresh = self.generate(prompt, todo, extra, soft=soft, metric=task.metric)
            for i, result in zip(missing, fresh):
                self.cache[keys[i]] = result
            self.stats["examples_scored"] += len(missing)
        return [self.cache[k] for k in keys]

    def classify(self, prompt: str | list[str], examples, label_words, soft=None) -> list[ExampleResult]:
        contexts = self.contexts(prompt, examples)
        conts = [[continuation(c, w) for w in label_words] for c in contexts]
        scores = self.loglikelihoods(contexts, conts, soft=soft, ids=[ex.id for ex in examples])
        out = []
        for ex, lps in zip(examples, scores):
            best = max(range(len(lps)), key=lps.__getitem__)
            gold = lps[ex.label] if ex.label is not None else math.nan
            out.append(ExampleResult(float(best == ex.label), label_words[best], gold, tuple(lps)))
        return out

    def target_loglik(self, prompt: str | list[str], examples, soft=None) -> list[ExampleResult]:
        contexts = self.contexts(prompt, examples)
        conts = [[continuation(c, ex.output)] for c, ex in zip(contexts, examples)]
        scores = self.loglikelihoods(contexts, conts, soft=soft, ids=[ex.id for ex in examples])
        return [ExampleResult(s[0], "", s[0]) for s in scores]

    def loglikelihoods(self, contexts: list[str], continuations: list[list[str]], soft=None, ids=None) -> list[list[float]]:
        """log P(continuation | context) for each context and each of its continuations."""
        if not self.white_box:
            if self.chat:
                raise PromptSearchError("--chat with a served model scores generation tasks only: a chat API "
                                        "returns no log-probabilities of given label words or answers")
            self.stats["rows"] += len(contexts)
            return self.model.loglikelihoods(contexts, continuations)
        ctx_tokens = [self.model.encode_context(c) for c in contexts]
        cont_tokens = [[self.model.encode(k) for k in ks] for ks in continuations]
        rows, queries, layouts = [], [], []
        for i, (ctx, ks) in enumerate(zip(ctx_tokens, cont_tokens)):
            if not ctx:
                raise PromptSearchError("a rendered prompt is empty; the template needs some text")
            for j, k in enumerate(ks):
                if not k:
                    raise PromptSearchError(f"continuation {continuations[i][j]!r} encodes to no tokens")
            # One row per context: the context, then every longer continuation but its last token, each
            # continuation seeing the context and its own tokens only (see _layout_mask). The context's
            # last position predicts every continuation's first token.
            row, seg, pos = list(ctx), [0] * len(ctx), list(range(len(ctx)))
            q = [(len(ctx) - 1, [k[0] for k in ks], [(i, j) for j in range(len(ks))])]
            for j, k in enumerate(ks):
                start = len(row)
                row += k[:-1]
                seg += [j + 1] * (len(k) - 1)
                pos += range(len(ctx), len(ctx) + len(k) - 1)
                q.extend((start + t - 1, [k[t]], [(i, j)]) for t in range(1, len(k)))
            rows.append(row)
            queries.append(q)
            layouts.append((seg, pos) if len(row) > len(ctx) else None)
        # The longest position any row uses is its context plus its longest continuation.
        self._check_lengths([max(lay[1]) + 1 if lay else len(r) for r, lay in zip(rows, layouts)],
                            ids or list(range(len(rows))), soft)
        sums = [[0.0] * len(ks) for ks in cont_tokens]
        for q_rows, values in zip(queries, self._query_rows(rows, queries, soft, layouts)):
            for (_, _, slots), vals in zip(q_rows, values):
                for (i, j), v in zip(slots, vals):
                    sums[i][j] += v
        return sums

    def next_token_logprobs(self, contexts: list[str]):
        """The whole next-token log-probability distribution after each context (N x vocab)."""
        import torch

        if not self.white_box:
            raise PromptSearchError(f"the whole next-token distribution needs an in-process model; {self.model.name} is served")
        rows = [self.model.encode_context(c) for c in contexts]
        queries = [[(len(r) - 1, None, None)] for r in rows]
        return torch.stack([vals[0] for vals in self._query_rows(rows, queries, None)])

    def generate(self, prompt: str | list[str], examples, max_new_tokens: int, soft=None, metric: str = "exact_match") -> list[ExampleResult]:
        contexts = self.contexts(prompt, examples)
        if self.white_box:
            rows = [self.model.encode_context(c) for c in contexts]
            self._check_lengths([len(r) + max_new_tokens for r in rows], [ex.id for ex in examples], soft)
            texts = self._greedy(rows, max_new_tokens, soft)
        else:
            self.stats["rows"] += len(contexts)
            texts = self.model.generate(contexts, max_new_tokens, chat=self.chat)
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
        Used by strategies that ask a model for paraphrases and edits: the proposer, by default the
        scored model."""
        if self.proposer is not self.model:
            if not getattr(self.proposer.capabilities, "white_box", True):
                return [first_line(t) for t in self.proposer.generate(texts, max_new_tokens)]
            if self._proposer_scorer is None:
                self._proposer_scorer = Scorer(self.proposer, batch_size=self.batch_size)
            return self._proposer_scorer.complete(texts, max_new_tokens)
        if not self.white_box:
            return [first_line(t) for t in self.model.generate(texts, max_new_tokens)]
        rows = [self.model.encode_context(t) for t in texts]
        self._check_lengths([len(r) + max_new_tokens for r in rows], list(range(len(rows))), None)
        return [first_line(t) for t in self._greedy(rows, max_new_tokens, None)]

    def max_new_tokens(self, task) -> int:
        """Room for the longest answer in train/dev plus a little, so greedy output is not cut short."""
        if task.name not in self._max_new:
            longest = max(self.model.count_tokens(" " + a) for ex in task.train + task.dev for a in ex.answers)
            self._max_new[task.name] = min(64, longest + 4)
        return self._max_new[task.name]

    def set_max_new_tokens(self, task, n: int) -> None:
        """Decode the task's answers with the limit a search recorded (prompt.py: predicting new inputs has no
        train or dev answers to derive it from)."""
        self._max_new[task.name] = int(n)

    # ---- internals --------------------------------------------------------------------------
    def _soft(self, soft_id):
        if soft_id is None:
            return None
        if soft_id not in self.soft_prompts:
            raise PromptSearchError(f"soft prompt {soft_id!r} is not loaded in this scorer")
        return self.soft_prompts[soft_id]

    def _check_lengths(self, lengths: list[int], owners, soft) -> None:
        limit = self.model.max_length - (0 if soft is None else soft.shape[0])
        for length, owner in zip(lengths, owners):
            if length > limit:
                raise TooLongError(
                    f"example {owner}: prompt and answer take {length} tokens, over the model's context of {limit}"
                )

    def _query_rows(self, rows, queries, soft, layouts=None):
        """For each row, for each query (position, target ids, _), the log-probs of the targets.
        ``layouts[r]`` (segments, positions) marks a row that packs several continuations."""
        import torch

        lm = self.model.model
        shared = _common_prefix_length(rows)
        # Every queried position must lie after the shared prefix, in the part each row runs itself.
        shared = min([shared] + [min(p for p, _, _ in q) for q in queries if q])
        prefix_cache, offset = self._prefix_cache(rows[0][:shared], soft)
        n_soft = offset - shared
        results: list = [None] * len(rows)
        order = sorted(range(len(rows)), key=lambda r: len(rows[r]))
        with torch.inference_mode():
            for batch in self._batches(order, rows, shared):
                width = max(len(rows[r]) - shared for r in batch)
                ids = torch.full((len(batch), width), self.model.pad_id, dtype=torch.long)
                for b, r in enumerate(batch):
                    rest = rows[r][shared:]
                    ids[b, : len(rest)] = torch.tensor(rest)
                kwargs = {}
                if layouts and any(layouts[r] for r in batch):
                    mask, positions = _layout_mask([layouts[r] for r in batch], shared, n_soft, width, lm.dtype)
                    kwargs["attention_mask"] = mask.to(self.model.device)
                else:
                    positions = torch.arange(offset, offset + width).unsqueeze(0).expand(len(batch), -1)
                if prefix_cache is not None:
                    kwargs.update({_cache_kwarg(lm): _repeat_cache(prefix_cache, len(batch)), "use_cache": True})
                hidden = lm.base_model(
                    input_ids=ids.to(self.model.device), position_ids=positions.to(self.model.device), **kwargs
                ).last_hidden_state
                picks = [(b, p - shared) for b, r in enumerate(batch) for p, _, _ in queries[r]]
                if not picks:
                    continue
                idx_b = torch.tensor([b for b, _ in picks], device=hidden.device)
                idx_p = torch.tensor([p for _, p in picks], device=hidden.device)
                logprobs = head_logprobs(lm, hidden[idx_b, idx_p]).cpu()
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
        """The key/value cache of the shared prefix (soft prompt first, if any) and its length.

        The last few prefixes are kept across calls, so racing a prompt over growing example sets runs
        its instruction once, and a new prefix only runs past the longest kept one it starts with. Not
        with a soft prompt: its vectors may be changed in place (training) under the same tensor."""
        import torch

        n_soft = 0 if soft is None else soft.shape[0]
        if not prefix and soft is None:
            return None, 0
        key, past, start = tuple(prefix), None, 0
        if soft is None:
            if key in self._prefixes:
                self._prefixes.move_to_end(key)
                self.stats["prefix_hits"] += 1
                return self._prefixes[key], len(prefix)
            kept = [k for k in self._prefixes if len(k) < len(key) and key[: len(k)] == k]
            if kept:
                start = len(max(kept, key=len))
                past = copy.deepcopy(self._prefixes[key[:start]])  # the forward below extends it in place
        lm = self.model.model
        with torch.inference_mode():
            ids = torch.tensor([prefix[start:]], dtype=torch.long, device=self.model.device)
            embeds = lm.get_input_embeddings()(ids)
            if soft is not None:
                embeds = torch.cat([soft.unsqueeze(0), embeds], dim=1)
            kwargs = {} if past is None else {_cache_kwarg(lm): past}
            positions = torch.arange(start, len(prefix) + n_soft, device=self.model.device).unsqueeze(0)
            out = lm.base_model(inputs_embeds=embeds, position_ids=positions, use_cache=True, **kwargs)
        self.stats["prefix_tokens"] += len(prefix) - start + n_soft
        cache = getattr(out, "cache", None) if "cache" in out else out.past_key_values
        if soft is None:
            self._prefixes[key] = cache
            while len(self._prefixes) > self.kept_prefixes:
                self._prefixes.popitem(last=False)
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


def head_logprobs(lm, hidden):
    """Next-token log-probabilities from final hidden states (n x hidden): the LM head in float32 at
    least, with the model's logit soft-capping (Gemma 2) applied. Shared by the scorer and by the
    strategies that train against its numbers, so the two always agree."""
    import torch

    logits = lm.get_output_embeddings()(hidden)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    softcap = getattr(lm.config, "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return torch.log_softmax(logits, dim=-1)


def _layout_mask(layouts, shared: int, n_soft: int, width: int, dtype):
    """Position ids and an additive attention mask (batch, 1, width, prefix + width) for rows that pack
    continuations after their context: a token sees the shared prefix, and the earlier tokens of the
    context (segment 0) and of its own segment; each token sits at its position in context + segment."""
    import torch

    n_prefix = shared + n_soft
    seg = torch.zeros(len(layouts), width, dtype=torch.long)  # right padding: segment 0, never queried
    pos = torch.arange(n_prefix, n_prefix + width).repeat(len(layouts), 1)
    for b, layout in enumerate(layouts):
        if layout:
            s, p = layout
            seg[b, : len(s) - shared] = torch.tensor(s[shared:])
            pos[b, : len(p) - shared] = torch.tensor(p[shared:]) + n_soft
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    visible = causal & ((seg[:, None, :] == 0) | (seg[:, None, :] == seg[:, :, None]))
    mask = torch.zeros(len(layouts), 1, width, n_prefix + width, dtype=dtype)
    mask[:, 0, :, n_prefix:].masked_fill_(~visible, torch.finfo(dtype).min)
    return mask, pos


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
    """A fresh copy of a batch-1 key/value cache, repeated to the batch (forward extends it in place).
    Measured: handing the layers expanded views instead of copies saves nothing (the forward
    concatenates new keys onto them anyway), so this stays the plain copy."""
    fresh = copy.deepcopy(cache)
    if batch_size > 1:
        fresh.batch_repeat_interleave(batch_size)
    return fresh
