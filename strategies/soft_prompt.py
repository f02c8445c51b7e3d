"""Soft-prompt tuning (Lester et al. 2021): the baseline the hard prompts are measured against.

``n_virtual_tokens`` trainable vectors are prepended to the input embeddings of the frozen model and
trained on the train split, the rest of the prompt being a fixed template (the current best prompt,
or ``template``). The vectors live in PEFT's prompt-tuning module (``PromptTuningConfig`` +
``get_peft_model``), which is what gets saved (``save_pretrained``) and what a user loads back
with ``PeftModel.from_pretrained``. The loss is the task's own:

- classification: cross-entropy over the label words' log-likelihoods after the rendered template
  (the same numbers the scorer compares), and
- generation: the negative log-likelihood of the target, per target token.

Every ``eval_every`` training examples and at the end of every epoch the current vectors are
registered with the scorer and scored on (up to ``dev_examples`` rows of) dev, exactly as the search
scores candidates; the best vectors by (dev metric, mean gold log-likelihood) are kept, and training
stops after ``patience`` checks without improvement, after ``epochs`` epochs, after ``max_seconds``,
or when the stage's evaluation budget would not leave room to score the result.

Two candidates come out: the soft prompt itself (``Candidate.soft`` names the vectors; its ``prompt``
is the template they were trained with), and its reading as text: each vector replaced by the
nearest vocabulary token by cosine similarity, prepended to the template, so the leaderboard shows
how much of the soft prompt survives as words.

Accounting (``ctx.charge``): one training example through forward and backward counts as
``EVALS_PER_TRAIN_EXAMPLE`` = 3 example-evaluations (backward costs about two forwards); a dev
check counts one per dev row. The search then scores both candidates itself, as usual.

Artifacts: ``ctx.artifacts/soft-prompt-<id>/`` holds PEFT's ``adapter_config.json`` and
``adapter_model.safetensors`` plus ``training.json`` (settings, nearest tokens, dev history, evals
charged). A resumed run finds that folder, loads the vectors (safetensors) instead of retraining and
charges the same evaluations again, so the replayed search takes the same decisions.

The shared model is never changed: PEFT wraps it for the duration of training only (a prompt-tuning
PeftModel adds no hooks to the base model and its weights have ``requires_grad=False``), and the
wrapper is dropped afterwards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from promptsearch.candidate import Candidate
from promptsearch.errors import PromptSearchError
from promptsearch.metrics import summarize
from promptsearch.models.base import require_white_box
from promptsearch.results import continuation
from promptsearch.strategy import SearchContext, Strategy
from promptsearch.template import escape, validate

log = logging.getLogger(__name__)

EVALS_PER_TRAIN_EXAMPLE = 3
INITS = ("random", "vocab", "text")


@dataclass
class TrainResult:
    """What training produced: the best vectors (n_virtual x hidden, float32 on CPU) and its record."""

    embeddings: object
    record: dict


class SoftPromptTuning(Strategy):
    name = "soft-prompt"
    description = "Soft-prompt tuning (Lester et al. 2021) with PEFT, plus its nearest-token reading as a hard prompt."

    def __init__(self, n_virtual_tokens: int = 8, init: str = "text", init_text: str | None = None,
                 lr: float = 0.03, epochs: int = 20, batch_size: int = 8, patience: int = 4,
                 eval_every: int = 128, dev_examples: int = 64, template: str | None = None,
                 max_seconds: float | None = None):
        """
        n_virtual_tokens: trainable vectors prepended to the input.
        init: ``random`` (normal, scaled like the model's token embeddings), ``vocab`` (embeddings of
            random vocabulary tokens) or ``text`` (embeddings of ``init_text``'s tokens, repeated to fill).
        init_text: text for ``init=text``; default the task description, else its label words.
        lr, epochs, batch_size: AdamW learning rate, passes over train, train examples per step.
        patience: dev checks without improvement before stopping early.
        eval_every: train examples between dev checks (there is also one after every epoch).
        dev_examples: dev rows used for early stopping (a seeded sample when dev is larger).
        template: the prompt the vectors are trained with; default the current best prompt.
        max_seconds: stop training after this long (the run's time budget counts training too, and
            a stage whose time is up scores nothing more: leave room). None: no limit of its own.
        """
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, not {init!r}")
        for name, value in (("n_virtual_tokens", n_virtual_tokens), ("epochs", epochs), ("batch_size", batch_size),
                            ("patience", patience), ("eval_every", eval_every), ("dev_examples", dev_examples)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if not isinstance(lr, (int, float)) or not lr > 0:
            raise ValueError(f"lr must be a positive number, not {lr!r}")
        if template is not None:
            validate(template)
        if max_seconds is not None and (not isinstance(max_seconds, (int, float)) or max_seconds <= 0):
            raise ValueError(f"max_seconds must be a positive number, not {max_seconds!r}")
        self.n_virtual_tokens = n_virtual_tokens
        self.init = init
        self.init_text = init_text
        self.lr = float(lr)
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.eval_every = eval_every
        self.dev_examples = dev_examples
        self.template = template
        self.max_seconds = max_seconds

    # ---- the strategy protocol ----------------------------------------------------------------
    def start(self, context: SearchContext) -> None:
        require_white_box(context.scorer.model, "soft-prompt", "the input embeddings and gradients to train vectors")
        self._done = False

    def propose(self, context: SearchContext, n: int) -> list[Candidate]:
        if self._done:
            return []
        self._done = True
        base = self._base(context)
        dev = self._dev_subset(context)
        reserve = 2 * len(dev) + 1  # leave room for the search to score both candidates
        soft_id = self.soft_id(context, base)
        folder = context.artifacts / f"soft-prompt-{soft_id}" if context.artifacts is not None else None
        if folder is not None and (folder / "training.json").exists() and (folder / "adapter_model.safetensors").exists():
            result = load_trained(folder)
            log.info("soft prompt %s: loaded from %s instead of retraining", soft_id, folder)
            context.charge(result.record["evals_charged"])
        else:
            if context.remaining_evals() < reserve + len(dev) + EVALS_PER_TRAIN_EXAMPLE:
                log.warning("soft-prompt: no budget left to train a soft prompt")
                return []
            result = self.train(context, base, dev, reserve=reserve)
            if folder is not None:
                save_trained(context.scorer.model, result, folder, self._peft_config(context))
        context.scorer.register_soft_prompt(soft_id, result.embeddings)
        rec = result.record
        settings = (f"n={self.n_virtual_tokens} init={self.init} lr={self.lr:g} bs={self.batch_size} "
                    f"steps={rec['steps']} epochs={rec['epochs_run']:.2f}")
        soft = Candidate(base.prompt, base.label_words, soft=soft_id, strategy=self.name, parents=(base.id,),
                         edit=f"soft prompt {settings}; nearest tokens {rec['nearest_tokens']}")
        text = Candidate(escape(rec["nearest_text"]) + base.prompt, base.label_words, strategy=self.name,
                         parents=(soft.id,),
                         edit=f"nearest-token reading of soft prompt {soft_id} (mean cosine {rec['mean_cosine']:.2f})")
        return [soft, text]

    # ---- pieces -------------------------------------------------------------------------------
    def _base(self, ctx: SearchContext) -> Candidate:
        if self.template is not None:
            return Candidate(self.template)
        for c in ctx.best(len(ctx.leaderboard())):
            if c.soft is None:
                return c
        return Candidate(ctx.task.seed_prompt)

    def _dev_subset(self, ctx: SearchContext) -> list:
        dev = list(ctx.task.dev)
        if len(dev) <= self.dev_examples:
            return dev
        picks = sorted(ctx.rng.sample(range(len(dev)), self.dev_examples))
        return [dev[i] for i in picks]

    def soft_id(self, ctx: SearchContext, base: Candidate) -> str:
        """Names the vectors: same task data, template, settings and seed -> same id (and folder)."""
        raw = json.dumps([ctx.scorer.model.fingerprint, ctx.task.name, [ex.key for ex in ctx.task.train],
                          [ex.key for ex in ctx.task.dev], base.prompt, base.label_words, ctx.seed,
                          self.n_virtual_tokens, self.init, self.init_text, self.lr, self.epochs, self.batch_size,
                          self.patience, self.eval_every, self.dev_examples, self.max_seconds])
        return hashlib.sha1(raw.encode()).hexdigest()[:12]

    def _init_text(self, task) -> str:
        if self.init_text:
            return self.init_text
        if task.description.strip():
            return task.description.strip()
        if task.label_words:
            return " ".join(task.label_words)
        return "Answer the following."

    def _peft_config(self, ctx: SearchContext):
        from peft import PromptTuningConfig, PromptTuningInit, TaskType

        # RANDOM here only sizes the module: the vectors are set by initial_embeddings (PEFT's TEXT
        # init would load a tokenizer by name, which fails for the embedded GGUF model).
        return PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=self.n_virtual_tokens,
                                  prompt_tuning_init=PromptTuningInit.RANDOM,
                                  token_dim=ctx.scorer.model.model.config.hidden_size)

    def initial_embeddings(self, ctx: SearchContext, generator):
        import torch

        model = ctx.scorer.model
        table = model.input_embeddings().weight.detach().float()
        n = self.n_virtual_tokens
        if self.init == "random":
            std = table.std(dim=0)
            return torch.randn(n, table.shape[1], generator=generator) * std.cpu() + table.mean(dim=0).cpu()
        if self.init == "vocab":
            allowed = _allowed_ids(model, table.shape[0])
            picks = torch.randint(0, len(allowed), (n,), generator=generator)
            return table[allowed[picks]].cpu().clone()
        ids = model.encode(self._init_text(ctx.task))
        if not ids:
            raise PromptSearchError("soft-prompt: init_text encodes to no tokens")
        ids = (ids * math.ceil(n / len(ids)))[:n]
        return table[torch.tensor(ids, device=table.device)].cpu().clone()

    # ---- training -----------------------------------------------------------------------------
    def train(self, ctx: SearchContext, base: Candidate, dev: list, reserve: int = 0) -> TrainResult:
        """Train the vectors with the template of ``base``; returns the best by dev (or the start)."""
        import torch
        from peft import get_peft_model

        scorer, task = ctx.scorer, ctx.task
        if not task.train:
            raise PromptSearchError("soft-prompt: the task has no train examples to train on")
        model = scorer.model
        lm = model.model
        generator = torch.Generator().manual_seed(ctx.rng.getrandbits(63))
        init = self.initial_embeddings(ctx, generator)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # transformers' deprecation notes on PEFT's checks
            peft_model = get_peft_model(lm, self._peft_config(ctx))
        try:
            weight = peft_model.prompt_encoder["default"].embedding.weight
            with torch.no_grad():
                weight.copy_(init.to(weight.device, weight.dtype))
            rows = [self._rows(scorer, task, base, ex) for ex in task.train]
            optimizer = torch.optim.AdamW([weight], lr=self.lr, weight_decay=0.0)
            words = base.label_words or task.label_words
            probe = f"soft-prompt-training-{ctx.seed}-{id(self)}"
            history, charged = [], 0

            def dev_check(step: int, epoch: float) -> tuple[float, float]:
                nonlocal charged
                scorer.register_soft_prompt(probe, weight.detach())
                cand = Candidate(base.prompt, base.label_words, soft=probe)
                results = scorer.evaluate(task, cand, dev)
                scorer.forget(task, cand, dev)  # the probe's vectors change: never serve them from the cache
                ctx.charge(len(dev))
                charged += len(dev)
                score = summarize(task.metric, results, dev, words).score
                golds = [r.logprob for r in results if not math.isnan(r.logprob)]
                tie = sum(golds) / len(golds) if golds else -math.inf
                history.append({"step": step, "epoch": round(epoch, 3), "dev": score, "dev_logprob": tie,
                                "train_loss": None})
                return (score, tie)

            started = time.monotonic()
            best_key = dev_check(0, 0.0)
            best = weight.detach().clone()
            best_step, checks_since, step, seen, since_check = 0, 0, 0, 0, 0
            losses: list[float] = []
            stop = False
            for epoch in range(self.epochs):
                order = list(range(len(rows)))
                ctx.rng.shuffle(order)
                for start in range(0, len(order), self.batch_size):
                    batch = [rows[i] for i in order[start : start + self.batch_size]]
                    cost = EVALS_PER_TRAIN_EXAMPLE * len(batch)
                    out_of_time = self.max_seconds is not None and time.monotonic() - started > self.max_seconds
                    if out_of_time or ctx.remaining_evals() < cost + len(dev) + reserve:
                        stop = True
                        break
                    optimizer.zero_grad()
                    loss = self._loss(model, weight, batch, task.kind)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_([weight], 1.0)
                    optimizer.step()
                    ctx.charge(cost)
                    charged += cost
                    step += 1
                    seen += len(batch)
                    since_check += len(batch)
                    losses.append(float(loss.detach()))
                    end_of_epoch = start + self.batch_size >= len(order)
                    if since_check >= self.eval_every or end_of_epoch:
                        since_check = 0
                        key = dev_check(step, seen / len(rows))
                        history[-1]["train_loss"] = sum(losses) / len(losses)
                        losses = []
                        if key > best_key:
                            best_key, best, best_step, checks_since = key, weight.detach().clone(), step, 0
                        else:
                            checks_since += 1
                            if checks_since >= self.patience:
                                stop = True
                                break
                if stop:
                    break
            if since_check and losses:  # budget ran out between checks: look at the last vectors too
                key = dev_check(step, seen / len(rows))
                history[-1]["train_loss"] = sum(losses) / len(losses)
                if key > best_key:
                    best_key, best, best_step = key, weight.detach().clone(), step
            scorer.drop_soft_prompt(probe)
        finally:
            del peft_model  # the base model carries no trace of the wrapper
        best = best.float().cpu()
        near = nearest_tokens(model, best)
        record = {
            "template": base.prompt, "label_words": list(base.label_words) if base.label_words else None,
            "n_virtual_tokens": self.n_virtual_tokens, "init": self.init,
            "init_text": self._init_text(task) if self.init == "text" else None,
            "lr": self.lr, "batch_size": self.batch_size, "epochs": self.epochs, "patience": self.patience,
            "steps": step, "epochs_run": seen / len(rows), "best_step": best_step,
            "best_dev": best_key[0], "best_dev_logprob": best_key[1], "dev_n": len(dev),
            "history": history, "evals_charged": charged, "train_seconds": round(time.monotonic() - started, 2),
            **near,
        }
        log.info("soft prompt: %d steps, best dev %.3f at step %d; nearest tokens %s", step, best_key[0],
                 best_step, near["nearest_tokens"])
        return TrainResult(best, record)

    def _rows(self, scorer, task, base: Candidate, ex):
        """Token rows of one example: (ids, [(position, target id, answer index)]), gold index."""
        context = scorer.render(base.prompt, ex.input)
        ctx_ids = scorer.model.encode_context(context)
        if task.kind == "classification":
            answers = [continuation(context, w) for w in (base.label_words or task.label_words)]
            gold = ex.label
        else:
            answers = [continuation(context, ex.output)]
            gold = 0
        conts = [scorer.model.encode(a) for a in answers]
        if not ctx_ids or any(not k for k in conts):
            raise PromptSearchError(f"example {ex.id}: the rendered prompt or an answer encodes to no tokens")
        last = len(ctx_ids) - 1
        singles = [(last, k[0], j) for j, k in enumerate(conts) if len(k) == 1]
        out = [(ctx_ids, singles)] if singles else []
        for j, k in enumerate(conts):
            if len(k) > 1:
                out.append((ctx_ids + k[:-1], [(last + t, k[t], j) for t in range(len(k))]))
        return out, gold, len(conts), [len(k) for k in conts]

    def _loss(self, model, weight, batch, kind: str):
        """Mean loss of a batch of examples with the soft prompt ``weight`` prepended."""
        import torch

        lm = model.model
        flat = [(b, ids, queries) for b, (rows, _, _, _) in enumerate(batch) for ids, queries in rows]
        n_virtual = weight.shape[0]
        width = max(len(ids) for _, ids, _ in flat)
        pad = 0
        input_ids = torch.full((len(flat), width), pad, dtype=torch.long)
        for r, (_, ids, _) in enumerate(flat):
            input_ids[r, : len(ids)] = torch.tensor(ids)
        input_ids = input_ids.to(weight.device)
        embeds = lm.get_input_embeddings()(input_ids)
        embeds = torch.cat([weight.to(embeds.dtype).unsqueeze(0).expand(len(flat), -1, -1), embeds], dim=1)
        # right padding: real tokens never attend to the padding after them, so no mask is needed
        hidden = lm.base_model(inputs_embeds=embeds).last_hidden_state
        picks = [(r, n_virtual + p, t, b, j) for r, (b, _, queries) in enumerate(flat) for p, t, j in queries]
        idx_r = torch.tensor([p[0] for p in picks], device=hidden.device)
        idx_p = torch.tensor([p[1] for p in picks], device=hidden.device)
        logprobs = model.head_logprobs(hidden[idx_r, idx_p])
        targets = torch.tensor([p[2] for p in picks], device=logprobs.device)
        picked = logprobs[torch.arange(len(picks), device=logprobs.device), targets]
        n_answers = batch[0][2]
        sums = torch.zeros(len(batch), n_answers, device=picked.device)
        owner = torch.tensor([p[3] * n_answers + p[4] for p in picks], device=picked.device)
        sums = sums.view(-1).index_add(0, owner, picked).view(len(batch), n_answers)
        golds = torch.tensor([g for _, g, _, _ in batch], device=sums.device)
        if kind == "classification":
            return torch.nn.functional.cross_entropy(sums, golds)
        lengths = torch.tensor([lens[0] for _, _, _, lens in batch], dtype=sums.dtype, device=sums.device)
        return (-sums[:, 0] / lengths).mean()

    def train_loss(self, ctx: SearchContext, base: Candidate, embeddings, examples=None) -> float:
        """The training loss of given vectors on (train) examples, without gradients (for checks)."""
        import torch

        task = ctx.task
        rows = [self._rows(ctx.scorer, task, base, ex) for ex in (examples or task.train)]
        model = ctx.scorer.model
        weight = embeddings.to(model.device, model.dtype)
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start : start + self.batch_size]
                total += float(self._loss(model, weight, batch, task.kind)) * len(batch)
        return total / len(rows)


# ---- reading the vectors back as text, saving and loading --------------------------------------
def _allowed_ids(model, size: int):
    """Vocabulary ids a projection may use: all but the special tokens (they decode to nothing)."""
    import torch

    special = set(model.tokenizer.all_special_ids)
    return torch.tensor([i for i in range(min(size, len(model.tokenizer))) if i not in special])


def nearest_tokens(model, embeddings) -> dict:
    """Nearest (cosine) non-special vocabulary token of each vector; their text, joined."""
    import torch

    table = model.input_embeddings().weight.detach().float().cpu()
    allowed = _allowed_ids(model, table.shape[0])
    sub = torch.nn.functional.normalize(table[allowed], dim=1)
    vecs = torch.nn.functional.normalize(embeddings.detach().float().cpu(), dim=1)
    cos = vecs @ sub.T
    best, idx = cos.max(dim=1)
    ids = allowed[idx].tolist()
    return {
        "nearest_ids": ids,
        "nearest_tokens": model.tokenizer.convert_ids_to_tokens(ids),
        "nearest_cosine": [round(float(c), 4) for c in best],
        "mean_cosine": float(best.mean()),
        "nearest_text": model.decode(ids),
    }


def save_trained(model, result: TrainResult, folder: Path, peft_config) -> None:
    """Save the vectors as a PEFT prompt-tuning adapter plus ``training.json``; atomic."""
    import torch
    from peft import get_peft_model

    folder = Path(folder)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper = get_peft_model(model.model, peft_config)
    try:
        weight = wrapper.prompt_encoder["default"].embedding.weight
        with torch.no_grad():
            weight.copy_(result.embeddings.to(weight.device, weight.dtype))
        wrapper.save_pretrained(str(tmp))
    finally:
        del wrapper
    (tmp / "training.json").write_text(json.dumps(result.record, indent=1))
    if folder.exists():
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, folder)


def load_trained(folder: Path) -> TrainResult:
    """Read vectors saved by :func:`save_trained` (safetensors; no pickle)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        tensors = load_file(str(folder / "adapter_model.safetensors"))
        record = json.loads((folder / "training.json").read_text())
    except (OSError, ValueError) as e:
        raise PromptSearchError(f"{folder}: cannot read the saved soft prompt ({e})") from None
    if "prompt_embeddings" not in tensors:
        raise PromptSearchError(f"{folder}: adapter_model.safetensors holds no prompt_embeddings")
    return TrainResult(tensors["prompt_embeddings"].float(), record)
