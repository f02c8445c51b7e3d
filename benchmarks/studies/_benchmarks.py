"""Puts ``benchmarks/`` on the path for a script of this folder run as a file (``python benchmarks/studies/X.py``,
where Python puts only ``benchmarks/studies/`` there), so it imports ``common`` like the top-level scripts do.
Imported as a package (``benchmarks.studies.X``: the tests, ``python -m``) a script takes ``from .. import
common`` and never loads this.
"""

import sys
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
