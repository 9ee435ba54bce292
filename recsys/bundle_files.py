"""A bundle's files on disk: the checksums its manifest lists, and the manifest's own shape.

Everything a bundle holds is checksummed, its Feast repository (``feature_repo/``) included,
except the files written while it serves (see ``MUTABLE``); :func:`check_manifest` turns any
manifest that is not what ``train_bundle`` writes into a :class:`BundleError` naming the field.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from recsys.errors import BundleError
from recsys.ranking.bundle import FEATURE_REPO

BUNDLE_FORMAT = 1


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Written while a bundle serves, so no checksum can hold: the Feast yaml is rendered for the
# configured online store, and the SQLite online store takes the pushed events. The online store
# is checked by the trial requests a bundle answers before it is swapped in (serving.state).
MUTABLE = ("feature_store.yaml", "data/online_store.db")


def checksums(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): sha256(p)
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != "manifest.json" and not mutable(p.relative_to(path))
    }


# Derived and machine-specific: compiled trees are rebuilt from the (checksummed) model text
# whenever the cached object's key (model hash, platform, compiler) does not match.
DERIVED = ("rankers/compiled/",)


def mutable(rel: Path) -> bool:
    if any(rel.as_posix().startswith(d) for d in DERIVED) or rel.name.endswith(".tmp"):
        return True
    if rel.parts[:1] != (FEATURE_REPO,):
        return False
    inner = "/".join(rel.parts[1:])
    return any(inner == m or inner.startswith(f"{m}-") for m in MUTABLE)  # -journal, -wal


# what load_bundle reads of a manifest, and the JSON type each must have
MANIFEST_FIELDS: dict[str, type] = {
    "version": str, "sources": dict, "config": dict, "checksums": dict,
}  # fmt: skip


def check_manifest(file: Path, manifest: Any) -> None:
    """A manifest that is not the object ``train_bundle`` writes is a BundleError naming what."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{file}: expected a JSON object, got {type(manifest).__name__}")
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(
            f"{file}: bundle format {manifest.get('format')!r}, expected {BUNDLE_FORMAT}"
        )
    for key, kind in MANIFEST_FIELDS.items():
        if not isinstance(manifest.get(key), kind):
            raise BundleError(
                f"{file}: {key!r} must be a JSON {kind.__name__}, got {manifest.get(key)!r:.80}"
            )
    if not manifest["checksums"]:
        raise BundleError(f"{file}: 'checksums' is empty; every bundle file must be listed")
    if not isinstance(manifest["config"].get("retrieval"), dict):
        raise BundleError(f"{file}: config.retrieval must be a JSON object")
    for name, entry in manifest["sources"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
            raise BundleError(f"{file}: sources.{name} must be an object with a 'model' file")
    if manifest.get("ranking") is not None and not isinstance(manifest["ranking"], dict):
        raise BundleError(f"{file}: 'ranking' must be a JSON object or null")
