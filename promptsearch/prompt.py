"""A found prompt an application can run: ``Prompt.predict`` scores new, unlabelled inputs exactly as the
search scored the prompt (the same scorer path: its demonstration rule choosing from its stored train pool, its
calibration, its ensemble members, the same answer and stop rules), and ``render`` shows the text sent.

A ``Prompt`` comes from an artifact (``load_prompt``, ``promptsearch predict --artifact``) or from a search
result (``result.best``). ``scoring_rule`` is what an artifact records about how its answer is read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .candidate import Candidate
from .errors import PromptSearchError
from .files import check_text
from .metrics import softmax
from .plain import is_plain, lacks
from .scoring import demos as demo_rules
from .task import Example, Task


def scoring_rule(kind: str, metric: str, candidate: Candidate, chat: bool, max_new_tokens: int | None) -> dict:
    """How an answer follows the prompt and is read, in words and numbers (what an artifact records)."""
    rule = {
        "render": "each {input} slot replaced by the input text; {{ and }} are literal braces"
                  + ("; then the model's chat template (one user message, generation prompt added)" if chat else ""),
        "answer": "the answer follows the rendered prompt after one space, unless the prompt ends in white space",
        "metric": metric,
        "text_alone": is_plain(candidate),
        "lacks": lacks(candidate),
    }
    if kind == "classification":
        rule["mode"] = "classify"
        rule["labels"] = ("each label word's log-likelihood after the prompt (summed over its tokens); the highest "
                          "wins" + (", after the calibration" if candidate.calibrate else "")
                          + (", from the members' weighted mean of softmaxed label scores" if candidate.members else ""))
    elif metric == "loglik":
        rule["mode"] = "loglik"
    else:
        rule["mode"] = "generate"
        rule["generation"] = {"decoding": "greedy", "max_new_tokens": max_new_tokens,
                              "stop": "a line end or the end token; the answer is the first line, stripped"}
    return rule


@dataclass(frozen=True)
class Prediction:
    """One input's answer: the predicted label word or generated answer, and for classification each label's
    probability (softmax of the label scores as scored) and the label scores themselves. An input the prompt
    cannot be scored on has no answer (``prediction`` None) and says why (``error``), as a run scores such a
    row wrong, while the other inputs of the call are answered."""

    input: str
    prediction: str | None
    label_probs: dict[str, float] | None = None
    label_scores: dict[str, float] | None = None
    error: str | None = None

    def to_json(self) -> dict:
        out = {"input": self.input, "prediction": self.prediction}
        if self.error is not None:
            out["error"] = self.error
        if self.label_scores is not None:
            out["label_probs"] = self.label_probs
            out["label_scores"] = {k: (None if math.isinf(v) else v) for k, v in self.label_scores.items()}
        return out


@dataclass
class Prompt:
    """A prompt with everything its score depends on. ``candidate`` holds the text and scoring options."""

    candidate: Candidate
    kind: str
    metric: str
    label_words: tuple[str, ...] = ()
    chat: bool = False
    demo_pool: list | None = None  # train rows a demonstration rule chooses from (demos.pool_rows)
    max_new_tokens: int | None = None  # generation: the limit the search decoded with
    task_name: str = "prompt"
    soft_vectors: object = None  # a soft prompt's tensor, when it has one
    scores: dict = field(default_factory=dict)  # as recorded: dev, test (with n and CI)
    # An artifact's: the bias rows its calibrated members were corrected by in the search (export.stored_biases), and
    # the weights they were read on (artifact.model_fingerprint); used where predict's model is those weights.
    stored_biases: dict = field(default_factory=dict, repr=False)
    weights: str | None = None
    # The task's own label words, which an ensemble member without words of its own is scored with; ``label_words``
    # are the prompt's (an ensemble's: its first member's). Empty in an artifact from before they were recorded.
    task_words: tuple[str, ...] = ()
    # Calibration bias rows computed by earlier predict calls, keyed by model fingerprint (calibration.py): batch
    # calibration averages 32 pool inputs per member, which dominated a predict call of a few inputs (17 s for 2
    # inputs of a 3-member ensemble on a 2-core CPU) and is the same floats every time on the same model.
    _biases: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    # The model predict uses when given none: an artifact's recorded one ({"spec", "dtype", "name"}; its fingerprint
    # is ``weights``), loaded on first use; a search's best gets the search's own loaded model (api.SearchResult).
    recorded_model: dict = field(default_factory=dict, repr=False, compare=False)
    _model: object = field(default=None, init=False, repr=False, compare=False)

    def __repr__(self) -> str:
        """What decides its score, short: the text, its scoring options and its recorded scores (the generated
        repr printed the whole demonstration pool)."""
        c = self.candidate
        shown = [repr(self.text), self.kind]
        if c.members:
            shown.append(f"ensemble of {len(c.members)}")
        shown += [f"{key}={getattr(c, key)}" for key in ("calibrate", "demos") if getattr(c, key, None)]
        if c.verbalizer:
            shown.append(f"verbalizer of {sum(map(len, c.verbalizer)) + len(c.verbalizer)} words")
        if c.soft:
            shown.append("soft prompt")
        shown += [f"{split}={self.scores[split]['score']:.3f} (n={self.scores[split]['n']})"
                  for split in ("dev", "holdout", "test") if (self.scores.get(split) or {}).get("score") is not None]
        return f"Prompt({', '.join(shown)})"

    @property
    def text(self) -> str:
        return self.candidate.prompt

    @property
    def options(self) -> dict:
        return self.candidate.options()

    @property
    def plain(self) -> bool:
        """Whether the text alone is the whole prompt (no option the text does not show)."""
        return is_plain(self.candidate)

    def lacks(self) -> list[str]:
        return lacks(self.candidate)

    @classmethod
    def from_artifact(cls, art, path: str | Path | None = None) -> Prompt:
        from .artifact import soft_vectors

        scoring = art.scoring or {}
        vectors = soft_vectors(art, path) if art.soft and path is not None else None
        if art.soft and vectors is None:
            raise PromptSearchError("a soft-prompt artifact needs its file path to find its vectors")
        return cls(art.candidate(), art.task["kind"], art.metric, tuple(art.label_words or ()), art.chat,
                   art.demo_pool, (scoring.get("generation") or {}).get("max_new_tokens"), art.task["name"],
                   vectors, {k: art.scores[k] for k in ("dev", "holdout", "test") if k in art.scores},
                   stored_biases=dict((scoring.get("calibration_bias") or {}).get("biases") or {}),
                   weights=art.model["fingerprint"], task_words=tuple(art.task.get("label_words") or ()),
                   recorded_model={k: art.model[k] for k in ("spec", "name", "dtype")})

    @classmethod
    def from_candidate(cls, candidate: Candidate, task: Task, chat: bool = False, max_new_tokens: int | None = None,
                       scores: dict | None = None) -> Prompt:
        pool = demo_rules.pool_rows(task) if demo_rules.uses_pool(candidate) else None
        return cls(candidate, task.kind, task.metric, tuple(candidate.label_words or task.label_words), chat, pool,
                   max_new_tokens, task.name, None, dict(scores or {}), task_words=tuple(task.label_words))

    # ---- what is sent -----------------------------------------------------------------------------
    def task(self) -> Task:
        """The task the prompt is scored on: its kind, metric and label words, and its stored demo pool as train."""
        task = Task(self.task_name, self.kind, (), (), (), self.metric, self.candidate.prompt, self._task_words())
        return demo_rules.with_pool(task, self.demo_pool) if self.demo_pool else task

    def _task_words(self) -> tuple[str, ...]:
        members = self.candidate.members
        if self.task_words or not members or all(m.label_words for m in members):
            return self.task_words or self.label_words
        if members[0].label_words:  # the top-level words are that member's, not the task's the others were scored with
            raise PromptSearchError("this artifact's ensemble has members scored with the task's label words, which it "
                                    "does not record (an artifact from before they were); export it again from its run")
        return self.label_words

    def task_on(self, task: Task) -> Task:
        """Another task's data scored as this prompt is: its demonstrations from the stored pool."""
        return demo_rules.with_pool(task, self.demo_pool) if self.demo_pool else task

    def render(self, text: str):
        """The prompt text for one input as the model gets it (with its demonstrations, for a demos rule); chat
        prompts as the messages list. An ensemble shows its first member; calibration changes no text."""
        from .template import render

        filled = render(self._prompts([text])[0], text)
        return [{"role": "user", "content": filled}] if self.chat else filled

    def _prompts(self, texts: list[str]) -> list[str]:
        c = self.candidate.members[0] if self.candidate.members else self.candidate
        if not c.demos:
            return [c.prompt] * len(texts)
        found = demo_rules.Demonstrations().prompts(self.task(), c, [Example(t, "") for t in texts])
        return [found] * len(texts) if isinstance(found, str) else found

    # ---- predictions ------------------------------------------------------------------------------
    def predict(self, inputs, model=None, batch_size: int = 16, progress: bool = False) -> list[Prediction]:
        """Answers for unlabelled inputs (strings), batched through the scorer the search used. Without ``model``,
        the model it was scored with, as ``promptsearch predict`` does without ``--model``: a search's own, or the
        weights and dtype an artifact records (a URL read from a file is never connected to: pass that model)."""
        from .scoring import Scorer
        from .scoring.scorer import evaluate_rows

        texts = [_text(x, i) for i, x in enumerate(inputs)]
        model = self._recorded() if model is None else model
        scorer = Scorer(model, batch_size=batch_size, chat=self.chat)
        task = self.task()
        if self.soft_vectors is not None:
            scorer.register_soft_prompt(self.candidate.soft, self.soft_vectors)
        if self.kind == "generation" and self.metric != "loglik":
            if self.max_new_tokens is None:
                raise PromptSearchError("this prompt records no generation limit (an artifact from before it); "
                                        "export it again from its run")
            scorer.set_max_new_tokens(task, self.max_new_tokens)
        elif self.metric == "loglik":
            raise PromptSearchError("a loglik task scores given answers; it has no prediction for a new input")
        examples = [Example(t, "", id=str(i)) for i, t in enumerate(texts)]
        scorer.calibration.biases.update(self._biases)
        if self.stored_biases and not self._biases and self._on_its_weights(model):
            scorer.calibration.adopt(scorer, task, self.candidate, self.stored_biases)
        results, over = evaluate_rows(scorer, task, self.candidate, examples, progress)
        too_long = {ex.key for ex in over}
        self._biases.update(scorer.calibration.biases)
        words = self.candidate.label_words or self.label_words
        out = []
        for ex, text, r in zip(examples, texts, results):
            if ex.key in too_long:
                limit = getattr(model, "max_length", None)
                out.append(Prediction(text, None, error="with this prompt the input does not fit the model's context"
                                      + (f" of {limit} tokens" if limit else "")))
            elif self.kind == "classification":
                scores = dict(zip(words, r.label_logprobs))
                out.append(Prediction(text, r.prediction, dict(zip(words, softmax(r.label_logprobs))), scores))
            else:
                out.append(Prediction(text, r.prediction))
        return out

    def attach(self, model, biases: dict) -> Prompt:
        """A search's own state, for its best: the loaded model (predict's default) and the bias rows the search
        read, keyed by model and pool as predict keys them, so the first call corrects by the very numbers the
        search did without reading them again."""
        self._model = model
        self._biases.update(biases)
        return self

    def _recorded(self):
        """The model this prompt was scored with, loaded once and kept."""
        if self._model is None:
            from .models import is_served, load_model

            if not self.recorded_model:
                raise PromptSearchError("predict: no model recorded with this prompt; pass one "
                                        "(prompt.predict(inputs, ps.load_model(...)))")
            spec = self.recorded_model.get("spec")
            if is_served(spec):
                raise PromptSearchError(f"predict: this prompt was scored on a served model ({self.recorded_model.get('name')}); "
                                        "a URL read from a file is never connected to: pass prompt.predict(inputs, "
                                        "ps.load_model(URL))")
            loaded = load_model(spec, dtype=self.recorded_model.get("dtype") or "auto")
            if self.weights and not self._on_its_weights(loaded):
                raise PromptSearchError(f"predict: the weights at {spec or 'the embedded model'} differ from the ones "
                                        "this prompt was scored with; pass a model to predict with other weights")
            self._model = loaded
        return self._model

    def _on_its_weights(self, model) -> bool:
        """Whether ``model`` has the weights the artifact was scored with (a model loaded by ``load_model`` knows
        its spec; another is not trusted with the stored biases). The dtype and chat mode are in each bias's key."""
        from .artifact import model_fingerprint

        if self.weights is None or not hasattr(model, "spec"):
            return False
        try:
            return model_fingerprint(model.spec, loaded=model) == self.weights
        except PromptSearchError:  # weights that cannot be read: the biases are read again, as for any model
            return False


def _text(x, i: int) -> str:
    if not isinstance(x, str):
        raise PromptSearchError(f"input {i}: must be a string, not {type(x).__name__}")
    check_text(x, f"input {i}")  # command-line bytes that are not UTF-8: one line, not the tokenizer's TypeError
    return x
