"""Frame construction shared by the generator's phases."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd


def object_frame(columns: Mapping[str, Any]) -> pd.DataFrame:
    """A frame whose text columns are plain object arrays.

    pandas would otherwise infer its Arrow-backed string type, which the dataset contract
    converts back to object value by value: seconds per million rows.
    """
    out: dict[str, Any] = {}
    for name, values in columns.items():
        text = (isinstance(values, np.ndarray) and values.dtype == object) or (
            isinstance(values, list) and bool(values) and isinstance(values[0], str)
        )
        out[name] = pd.Series(values, dtype=object) if text else values
    return pd.DataFrame(out)
