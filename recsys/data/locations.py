"""Where the public datasets are read from (docs/datasets.md).

``RECSYS_DATASETS_DIR`` when set; else ``data/raw/`` in the repository when it exists (where
docs/datasets.md says to put the downloads); else a ``shared/data/`` folder next to the
repository (how development machines hold a read-only copy). Each dataset is a sub-folder:
``ml-100k``, ``amazon-beauty``, ``amazon-industrial``, ``yelp``, ``lastfm``.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def datasets_dir() -> Path:
    given = os.environ.get("RECSYS_DATASETS_DIR")
    if given:
        return Path(given)
    local = ROOT / "data" / "raw"
    return local if local.is_dir() else ROOT.parent / "shared" / "data"
