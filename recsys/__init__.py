"""The recommendation engine: datasets, splits, evaluation, pipeline stages and the CLI.

Kept import-light on purpose: `python -m recsys.bootstrap` runs from a fresh checkout before any
dependency is installed.
"""

__version__ = "0.1.0"
