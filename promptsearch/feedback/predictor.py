"""The rating predictor: what a person would likely rate an output nobody rated."""

from __future__ import annotations

import math

from .ratings import Rating


class RatingModel:
    """Predicts a rating in [0, 1] from (prompt, output, correct). Ridge regression on hashed word 1-2-grams
    of the prompt, hashed character 2-4-grams of the output, and dense features (log output length, word
    count, empty output, correct by the metric). Fewer than 3 ratings, or all equal: predicts their mean.

    A handful of ratings says little, so a prediction is shrunk toward the metric: ``n / (n + shrink)`` of it
    is the learned rating, the rest the output's metric share (1 right, 0 wrong; the mean rating where the
    metric is unknown). With 6 ratings an output the metric calls wrong can no longer be predicted 5/5 (#30)."""

    def __init__(self, alpha: float = 1.0, n_features: int = 2**12, prompt_weight: float = 0.5, shrink: float = 5.0):
        self.alpha = alpha
        self.n_features = n_features
        self.prompt_weight = prompt_weight
        self.shrink = shrink

    def _features(self, prompts, outputs, correct, fit=False):
        import numpy as np
        from scipy import sparse
        from sklearn.feature_extraction.text import HashingVectorizer

        words = HashingVectorizer(analyzer="word", ngram_range=(1, 2), n_features=self.n_features,
                                  alternate_sign=False, norm="l2", token_pattern=r"[^\s]+")
        chars = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=self.n_features,
                                  alternate_sign=False, norm="l2")
        dense = np.array([[math.log1p(len(o)), len(o.split()), float(not o.strip()),
                           0.5 if c is None or (isinstance(c, float) and math.isnan(c)) else float(c)]
                          for o, c in zip(outputs, correct)], dtype=float)
        if fit:
            self.mean_ = dense.mean(0)
            self.scale_ = np.where(dense.std(0) > 1e-9, dense.std(0), 1.0)
        dense = (dense - self.mean_) / self.scale_
        return sparse.hstack([words.transform(prompts) * self.prompt_weight, chars.transform(outputs),
                              sparse.csr_matrix(dense)]).tocsr()

    def fit(self, ratings: list[Rating]) -> RatingModel:
        import numpy as np

        y = np.array([r.value for r in ratings], dtype=float)
        self.n_ = len(ratings)
        self.mean_rating_ = float(y.mean()) if len(y) else 0.5
        self.ridge_ = None
        if len(y) >= 3 and y.std() > 1e-9:
            from sklearn.linear_model import Ridge

            X = self._features([r.prompt for r in ratings], [r.output for r in ratings],
                               [r.score for r in ratings], fit=True)
            self.ridge_ = Ridge(alpha=self.alpha).fit(X, y)
            self.train_mae_ = float(np.abs(np.clip(self.ridge_.predict(X), 0, 1) - y).mean())
        self.cv_mae_ = self._held_out_error(ratings, y)
        return self

    def _held_out_error(self, ratings: list[Rating], y) -> float | None:
        """Mean absolute error of the (shrunk) prediction on ratings held out of the fit, leave-one-out for
        up to 5 folds: the uncertainty `describe` states. None below 3 ratings."""
        import numpy as np

        n = len(ratings)
        if n < 3 or getattr(self, "_inner", False):
            return None
        folds = np.array_split(np.arange(n), min(5, n))
        errors = []
        for held in folds:
            out = set(held.tolist())
            rest = [r for i, r in enumerate(ratings) if i not in out]
            inner = RatingModel(self.alpha, self.n_features, self.prompt_weight, self.shrink)
            inner._inner = True
            inner.fit(rest)
            got = inner.predict([ratings[i].prompt for i in held], [ratings[i].output for i in held],
                                [ratings[i].score for i in held])
            errors += [abs(g - y[i]) for g, i in zip(got, held)]
        return float(np.mean(errors))

    def learned_share(self) -> float:
        return self.n_ / (self.n_ + self.shrink)

    def predict(self, prompts: list[str], outputs: list[str], correct: list) -> list[float]:
        import numpy as np

        if self.ridge_ is None:
            learned = [self.mean_rating_] * len(prompts)
        else:
            learned = np.clip(self.ridge_.predict(self._features(prompts, outputs, correct)), 0.0, 1.0)
        share = self.learned_share()
        prior = [self.mean_rating_ if c is None or (isinstance(c, float) and math.isnan(c)) else float(c) for c in correct]
        return [float(share * v + (1 - share) * p) for v, p in zip(learned, prior)]

    def describe(self) -> str:
        if self.ridge_ is None:
            text = f"mean of {self.n_} rating(s) ({1 + 4 * self.mean_rating_:.2f}/5); too few or all equal to learn from"
        else:
            text = f"ridge regression on {self.n_} rated outputs (training error {4 * self.train_mae_:.2f} rating points)"
        text += f", {100 * (1 - self.learned_share()):.0f}% shrunk toward the metric"
        if self.cv_mae_ is not None:
            text += f"; held-out error ±{4 * self.cv_mae_:.1f} rating points"
        return text
