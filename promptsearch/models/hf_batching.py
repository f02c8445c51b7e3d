"""The in-process batched path of a white-box model (models/local.py owns one): row packing, the shared
prefix's key/value cache and greedy decoding. What makes it fast:
- one row, one forward pass per context serves all its continuations: the context's last position
  predicts every continuation's first token, and the other tokens of longer continuations are packed
  after the context, each attending to the context and to itself only (a per-row attention mask);
- the token prefix every row shares (instruction, demonstrations) runs once and its key/value cache
  is reused by every batch; the last few prefixes are kept, so later calls with the same prompt
  (racing rungs, the test split) skip it; rows are right-padded and length-sorted, so real tokens
  never see padding;
- the LM head runs only at the positions whose next-token distribution is read.
benchmarks/bench_scorer.py measures this against a naive loop and lm-evaluation-harness.
``stats`` counts rows, forward passes and prefix tokens run.
"""

from __future__ import annotations

import copy
from collections import Counter, OrderedDict

from ..errors import PromptSearchError, TooLongError


class HFBatching:
    """Log-likelihoods, whole next-token distributions and greedy answers of a FrozenModel, batched."""

    kept_prefixes = 4  # shared-prefix key/value caches kept across calls (SmolLM2: ~46 KB a token)

    def __init__(self, model, batch_size: int = 16, max_batch_tokens: int = 8192):
        self.model = model
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.stats: Counter = Counter()
        self.prefixes: OrderedDict[tuple, object] = OrderedDict()  # prefix tokens -> key/value cache
        self._newline_ids: set[int] | None = None

    def loglikelihoods(self, contexts: list[str], continuations: list[list[str]], soft=None) -> list[list[float]]:
        """log P(continuation | context) for each context and each of its continuations; ``soft`` is a
        soft prompt's vectors (n_virtual x hidden) put before every row, or None."""
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
            # continuation seeing the context and its own tokens only (see layout_mask). The context's
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
        self.check_lengths([max(lay[1]) + 1 if lay else len(r) for r, lay in zip(rows, layouts)], soft)
        sums = [[0.0] * len(ks) for ks in cont_tokens]
        for q_rows, values in zip(queries, self._query_rows(rows, queries, soft, layouts)):
            for (_, _, slots), vals in zip(q_rows, values):
                for (i, j), v in zip(slots, vals):
                    sums[i][j] += v
        return sums

    def next_token_logprobs(self, contexts: list[str]):
        """The whole next-token log-probability distribution after each context (N x vocab)."""
        import torch

        rows = [self.model.encode_context(c) for c in contexts]
        queries = [[(len(r) - 1, None, None)] for r in rows]
        return torch.stack([vals[0] for vals in self._query_rows(rows, queries, None)])

    def generate(self, texts: list[str], max_new_tokens: int, soft=None) -> list[str]:
        """Greedy continuations of texts (each starting a sequence), stopping at the first line end."""
        rows = [self.model.encode_context(t) for t in texts]
        self.check_lengths([len(r) + max_new_tokens for r in rows], soft)
        return self._greedy(rows, max_new_tokens, soft)

    def check_lengths(self, lengths: list[int], soft) -> None:
        """Refuse a row over the model's context; TooLongError names the row (``row``), which the
        scorer turns into the example's id."""
        limit = self.model.max_length - (0 if soft is None else soft.shape[0])
        for row, length in enumerate(lengths):
            if length > limit:
                error = TooLongError(f"row {row}: prompt and answer take {length} tokens, over the model's context of {limit}")
                error.row, error.length, error.limit = row, length, limit
                raise error

    def _query_rows(self, rows, queries, soft, layouts=None):
        """For each row, for each query (position, target ids, _), the log-probs of the targets.
        ``layouts[r]`` (segments, positions) marks a row that packs several continuations."""
        import torch

        lm = self.model.model
        shared = common_prefix_length(rows)
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
                    mask, positions = layout_mask([layouts[r] for r in batch], shared, n_soft, width, lm.dtype)
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
            if key in self.prefixes:
                self.prefixes.move_to_end(key)
                self.stats["prefix_hits"] += 1
                return self.prefixes[key], len(prefix)
            kept = [k for k in self.prefixes if len(k) < len(key) and key[: len(k)] == k]
            if kept:
                start = len(max(kept, key=len))
                past = copy.deepcopy(self.prefixes[key[:start]])  # the forward below extends it in place
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
            self.prefixes[key] = cache
            while len(self.prefixes) > self.kept_prefixes:
                self.prefixes.popitem(last=False)
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
                kwargs = {"attention_mask": mask, "max_new_tokens": max_new_tokens, "do_sample": False,
                          "pad_token_id": self.model.pad_id, "stopping_criteria": [_LineEnd(stop_ids)]}
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
    least, with the model's logit soft-capping (Gemma 2) applied. Shared by scoring and by the strategies
    that train against its numbers (``FrozenModel.head_logprobs``), so the two always agree."""
    import torch

    logits = lm.get_output_embeddings()(hidden)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    softcap = getattr(lm.config, "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return torch.log_softmax(logits, dim=-1)


def layout_mask(layouts, shared: int, n_soft: int, width: int, dtype):
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


def common_prefix_length(rows: list[list[int]]) -> int:
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
