"""Memory stays level across reloads: a bundle swapped out is freed, nothing keeps it.

The app freezes the collector's view after each swap (gc.freeze) to spare requests long GC
passes, and unfreezes before the next swap so that a replaced bundle's cyclic garbage can be
collected. Here every replaced bundle must be gone after the next swap; the RSS side is
``benchmarks/reload_memory.py`` (60 reloads of the demo bundle: level at ~900 MB from the third
reload on, +0.6 MB over the last 30, where issue 15 had measured +2.6 MB per reload).
"""

from __future__ import annotations

import gc
import weakref

from recsys.artifacts import Bundle, load_bundle
from serving.app import create_app
from serving.settings import ServingSettings


def test_bundles_swapped_out_are_collected(bundle: Bundle, settings: ServingSettings) -> None:
    app = create_app(settings, bundle)
    state = app.state.serving
    gone: list[weakref.ref[object]] = []
    try:
        for i in range(5):
            fresh = load_bundle(bundle.path)
            old = state.swap(fresh)
            if i:  # the first one swapped out is the test's own bundle, still held here
                gone.append(weakref.ref(old.bundle))
            del old, fresh
        # one more swap: its own collection pass must free every bundle replaced before it
        # (each was unreferenced by then, but frozen by the swap that installed it)
        state.swap(load_bundle(bundle.path))
        alive = [ref for ref in gone if ref() is not None]
        assert not alive, f"{len(alive)} of {len(gone)} replaced bundles are still in memory"
    finally:
        gc.unfreeze()
