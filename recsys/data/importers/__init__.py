"""Importers: source formats in, validated canonical :class:`~recsys.data.contract.Dataset` out.

``import_dataset(fmt, src, **options)`` is the one entry point (the CLI's
``recsys data import FORMAT SRC``); ``IMPORTERS`` maps each format name to its function, whose
keyword-only parameters are the format's options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recsys.data.importers.base import ImportReport
from recsys.data.importers.generic import import_csv
from recsys.data.importers.minionerec import import_minionerec
from recsys.data.importers.ml100k import import_ml100k
from recsys.data.importers.s3rec import import_s3rec

IMPORTERS: dict[str, Callable[..., ImportReport]] = {
    "ml100k": import_ml100k,
    "s3rec": import_s3rec,
    "minionerec": import_minionerec,
    "csv": import_csv,
}


def importer_options(fmt: str) -> list[str]:
    """The option names a format accepts (its keyword-only parameters)."""
    params = inspect.signature(_importer(fmt)).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def import_dataset(fmt: str, src: str | Path, **options: Any) -> ImportReport:
    """Import ``src`` in format ``fmt``; unknown formats and options raise ``ValueError``."""
    importer = _importer(fmt)
    unknown = sorted(set(options) - set(importer_options(fmt)))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for format {fmt!r}; valid are {importer_options(fmt)}"
        )
    return importer(src, **options)


def _importer(fmt: str) -> Callable[..., ImportReport]:
    try:
        return IMPORTERS[fmt]
    except KeyError:
        raise ValueError(
            f"unknown dataset format {fmt!r}; valid formats are {sorted(IMPORTERS)}"
        ) from None


__all__ = ["IMPORTERS", "ImportReport", "import_dataset", "importer_options"]
