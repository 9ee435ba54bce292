"""`recsys train --set SOURCE.FIELD=VALUE`: per-source config overrides, typed and checked.

Every value is converted to its field's declared type (the frozen dataclass ``config`` of the
source's model) before anything trains, so ``--set als.factors=abc`` is one line naming the
field, the value and the type, not a traceback from deep inside a fit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import typing
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

# (("sasrec", (("max_len", 20),)), ...): sorted by source, then field, so equal overrides hash
# (and version a bundle) alike
Overrides = tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]


class OverrideError(ValueError):
    """An override names an unknown source or field, or a value its field cannot take."""


def parse_overrides(specs: Iterable[str]) -> Overrides:
    """``["sasrec.max_len=20", "als.factors=64"]`` -> TrainConfig.overrides, values typed.

    Raises :class:`OverrideError` for a malformed spec, an unknown source or field, or a value
    its field's type refuses.
    """
    grouped: dict[str, dict[str, str]] = {}
    for spec in specs:
        key, sep, raw = spec.partition("=")
        source, dot, name = key.partition(".")
        if not sep or not dot or not source or not name:
            raise OverrideError(
                f"override {spec!r} is not SOURCE.FIELD=VALUE (e.g. sasrec.max_len=20)"
            )
        grouped.setdefault(source, {})[name] = raw
    parsed = []
    for source, raws in sorted(grouped.items()):
        config = source_config(source)
        typed = {name: convert(source, config, name, raw) for name, raw in raws.items()}
        configured(source, config, typed)  # the config's own checks (lengths, ranges) too
        parsed.append((source, tuple(sorted(typed.items()))))
    return tuple(parsed)


def check_overrides(overrides: Overrides) -> None:
    """Apply every override to a fresh config of its source; the first bad one raises."""
    for source, pairs in overrides:
        configured(source, source_config(source), dict(pairs))


def source_config(source: str) -> Any:
    """The default config of ``source``'s model; :class:`OverrideError` for an unknown one."""
    from models.registry import MODELS, make_model

    if source not in MODELS:
        raise OverrideError(f"unknown source {source!r}; valid sources are {sorted(MODELS)}")
    config = getattr(make_model(source), "config", None)
    if config is None or not dataclasses.is_dataclass(config):
        raise OverrideError(f"source {source!r} has no config fields to set")
    return config


def configured(source: str, config: Any, changes: Mapping[str, Any]) -> Any:
    """``config`` with ``changes`` converted to its field types (the dataclass's own checks
    run too); :class:`OverrideError` names the bad field."""
    typed = {name: convert(source, config, name, value) for name, value in changes.items()}
    try:
        return dataclasses.replace(config, **typed)
    except (TypeError, ValueError) as exc:  # the config's __post_init__ refusing a combination
        raise OverrideError(f"--set {source}: {exc}") from None


def convert(source: str, config: Any, name: str, value: Any) -> Any:
    """``value`` as field ``name`` of ``config`` takes it; command-line strings are read as
    JSON first (numbers, booleans, lists, null), then as the bare string."""
    hints = _field_types(config.__class__)
    if name not in hints:
        raise OverrideError(
            f"--set {source}.{name}={value!r}: {source} has no config field(s) [{name!r}]; "
            f"valid fields are {list(hints)}"
        )
    adapter = _adapter(hints[name])
    candidates = [value]
    if isinstance(value, str):
        with contextlib.suppress(json.JSONDecodeError):  # a bare word: the string alone
            candidates.insert(0, json.loads(value))
    for candidate in candidates:
        try:
            return adapter.validate_python(candidate)
        except ValidationError:
            continue
    raise OverrideError(f"--set {source}.{name}={value!r}: expected {type_name(hints[name])}")


def type_name(tp: Any) -> str:
    """``int``, ``tuple[float, ...]``, ``int | None``: the type as a user would write it."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return repr(tp).replace("typing.", "")


@cache
def _field_types(cls: type) -> dict[str, Any]:
    # the models use `from __future__ import annotations`: resolve the strings once per class
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


@cache
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)
