"""The bandit schedule: the chain's strategies take turns in small pulls, and the one whose prompt leads the run
gets the next turn.

Sequential stages must guess beforehand how much of the budget each strategy deserves. The adaptive one (hand
over when a stage stalls) guessed wrong where a later strategy is far better: on first_word_letter templates kept
nudging the best up and spent 304 of 400 evaluations, leaving clarify 48; clarify alone reaches 0.96 there,
the default 0.54 (benchmarks/results/scoreboard-induction.json). Here every strategy gets a first turn early,
in chain order, of a whole round of proposals (what a stage starts with: a strategy puts its most promising
first; clarify's demonstration rules, which took TREC from 0.31 to 0.63, are in its first 8; with turns of 4
from the start, the default never reached them on TREC), and then turns of ``PULL`` proposals:

- the strategy that proposed the run's leader pulls again (it is the one that is working);
- a strategy not pulled for ``PATIENCE`` pulls gets the next one anyway (it may build on the new leader, and
  one lucky pull must not lock the others out);
- when the leader is the seed (no strategy has helped yet), they take turns.

A strategy that has nothing more to propose is started again if the leader changed since it started (templates
and clarify build on the best prompts they see at their start), else retired. Every decision depends on scores
and counts only, so a resumed run (which replays the search on its cached scores) takes the same turns.
"""

from __future__ import annotations

from dataclasses import dataclass

PULL = 4  # proposals per turn after the first: small, so that the run follows the strategy that leads closely
PATIENCE = 3  # a strategy waits at most this many turns


@dataclass
class Arm:
    """One strategy's record in the bandit schedule."""

    name: str
    started_on: str | None = None  # the leader's id when the strategy last started (None: not started)
    pulls: int = 0
    evals: int = 0
    leads: int = 0  # turns after which one of its proposals led the run
    last: int = -1  # the turn it last pulled
    empty: int = 0  # turns in a row it proposed only known prompts
    retired: bool = False

    def to_json(self) -> dict:
        return {"strategy": self.name, "evals": self.evals, "pulls": self.pulls, "leads": self.leads}


def choose(arms: list[Arm], leader_arm: int | None, turn: int) -> int | None:
    """The arm that pulls at this turn (None: all retired)."""
    live = [i for i, a in enumerate(arms) if not a.retired]
    if not live:
        return None
    fresh = [i for i in live if arms[i].pulls == 0]
    if fresh:
        return fresh[0]
    waited = [i for i in live if turn - arms[i].last > PATIENCE]
    if waited:
        return min(waited, key=lambda i: (arms[i].last, i))
    if leader_arm in live:
        return leader_arm
    return min(live, key=lambda i: (arms[i].last, i))  # no strategy leads: round robin
