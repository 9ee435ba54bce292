"""Memory stays level across reloads: a bundle swapped out is collected, not kept frozen.

The app freezes the collector's view after each swap (gc.freeze) to spare requests long GC
passes; a frozen object is never collected, so without unfreezing first every replaced bundle
stayed in memory for good (issue 15 measured about 2.6 MB per reload).
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
