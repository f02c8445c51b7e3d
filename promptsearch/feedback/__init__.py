"""Human feedback: people rate what the best prompts produce, and ``refine`` folds the ratings into the
next search. One concern a module:

- ``ratings``   -- a rating (1-5 and a comment) and the run's append-only ``ratings.jsonl``;
- ``session``   -- what a rater is shown next, the outputs, the export file (``promptsearch rate``);
- ``predictor`` -- :class:`RatingModel`, the rating a person would likely give an unrated output;
- ``blend``     -- :class:`BlendedScorer`, per-example score ``(1 - w) * metric + w * rating``;
- ``edits``     -- comments on low ratings become instructions ("too long" -> "Respond concisely.");
- ``refinement`` -- a refine run: a config (strategies ``refine`` + more, a ``feedback`` section) that the
  one runner runs with the blended scorer, and the explanation of how the ranking moved.
"""

from .blend import REFINE_FILE, BlendedScorer, blendable
from .edits import BUILTIN_EDITS, Edit, comment_edits, load_edit_map, model_proposer
from .predictor import RatingModel
from .ratings import RATINGS, Feedback, Rating, check_rating, parse_rating, read_ratings
from .refinement import NoRatingsError, refine
from .session import Item, RatingSession, logged_results, rating_items

__all__ = [
           "BUILTIN_EDITS",
           "RATINGS",
           "REFINE_FILE",
           "BlendedScorer",
           "Edit",
           "Feedback",
           "Item",
           "NoRatingsError",
           "Rating",
           "RatingModel",
           "RatingSession",
           "blendable",
           "check_rating",
           "comment_edits",
           "load_edit_map",
           "logged_results",
           "model_proposer",
           "parse_rating",
           "rating_items",
           "read_ratings",
           "refine",
]
