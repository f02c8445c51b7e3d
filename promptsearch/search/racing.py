"""Racing (successive halving, asynchronous as in ASHA): the rungs a candidate climbs, nested prefixes of a
seeded permutation of dev (see loop.py for the promotion rule)."""

from __future__ import annotations

import random
from dataclasses import dataclass


def dev_order(task, seed: int) -> list:
    """The seeded permutation of dev whose prefixes are the racing rungs."""
    order = list(range(len(task.dev)))
    random.Random(seed).shuffle(order)
    return [task.dev[i] for i in order]


@dataclass
class Racing:
    min_examples: int = 16
    eta: int = 3

    def rungs(self, n_dev: int) -> list[int]:
        sizes, size = [], max(1, self.min_examples)
        while size < n_dev:
            sizes.append(size)
            size *= self.eta
        return sizes + [n_dev]
