"""recsys.native: kernels compiled once into a keyed cache, and every way of not having them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from recsys import native

needs_cc = pytest.mark.skipif(native.find_compiler() is None, reason="no C compiler")


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Settings and loaded libraries forgotten, the cache in a folder of this test's own."""
    monkeypatch.setenv("RECSYS_NATIVE_CACHE", str(tmp_path))
    native.get_settings.cache_clear()
    native.library.cache_clear()
    yield tmp_path
    native.get_settings.cache_clear()
    native.library.cache_clear()


@needs_cc
def test_a_kernel_is_compiled_once_and_then_loaded_from_the_cache(fresh: Path) -> None:
    first = native.build("merge")
    assert first.parent == fresh and first.suffix == ".so"
    stamp = first.stat().st_mtime_ns
    assert native.build("merge") == first
    assert first.stat().st_mtime_ns == stamp  # not rebuilt
    assert native.library("merge") is not None
    assert [p.name for p in fresh.iterdir()] == [first.name]  # no temporary left behind


@needs_cc
def test_the_cache_key_follows_the_source(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = native.build("topk")
    edited = fresh / "src"
    edited.mkdir()
    for header in native.SOURCES.glob("*.h"):
        (edited / header.name).write_text(header.read_text())
    (edited / "topk.c").write_text((native.SOURCES / "topk.c").read_text() + "\n/* edit */\n")
    monkeypatch.setattr(native, "SOURCES", edited)
    assert native.build("topk") != before
    # a shared header is part of every kernel's key
    (edited / "merge.c").write_text((Path(native.__file__).parent / "merge.c").read_text())
    merged = native.build("merge")
    (edited / "scratch.h").write_text((edited / "scratch.h").read_text() + "\n/* edit */\n")
    assert native.build("merge") != merged


@needs_cc
def test_prepare_builds_every_kernel(fresh: Path) -> None:
    assert native.prepare() == {
        "columns": True,
        "context": True,
        "merge": True,
        "prefilter": True,
        "rows": True,
        "topk": True,
    }
    assert len(list(fresh.glob("*.so"))) == 6


def test_an_unknown_kernel_names_the_known_ones(fresh: Path) -> None:
    with pytest.raises(native.NativeBuildError, match=r"no native kernel 'nope'.*'merge'"):
        native.build("nope")


def test_an_unknown_mode_names_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"'fast'.*\('auto', 'on', 'off'\)"):
        native.check_mode("fast")
    monkeypatch.setenv("RECSYS_NATIVE", "fast")
    native.get_settings.cache_clear()
    try:
        with pytest.raises(ValueError, match="RECSYS_NATIVE"):
            native.get_settings()
    finally:
        native.get_settings.cache_clear()


def test_without_a_compiler_auto_falls_back_and_on_refuses(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", str(fresh / "no-such-compiler"))
    assert native.find_compiler() is None
    with pytest.warns(UserWarning, match="using the numpy path"):
        assert native.library("merge") is None
    native.library.cache_clear()
    monkeypatch.setenv("RECSYS_NATIVE", "on")
    native.get_settings.cache_clear()
    with pytest.raises(native.NativeBuildError, match="no C compiler"):
        native.library("merge")


@needs_cc
def test_a_failed_compile_reports_the_compiler_s_words(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = fresh / "src"
    broken.mkdir()
    (broken / "merge.c").write_text("int recsys_merge(void) { return not_declared; }\n")
    monkeypatch.setattr(native, "SOURCES", broken)
    with pytest.raises(native.NativeBuildError, match="not_declared"):
        native.build("merge")
    assert not list(fresh.glob("*.so")) and not list(fresh.glob(".merge-*"))


def test_off_means_no_library(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_NATIVE", "off")
    native.get_settings.cache_clear()
    assert native.library("merge") is None
