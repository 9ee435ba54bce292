"""The served catalog: what the decision layer filters on and what search matches against.

A bundle writes its items' catalog rows (``items.parquet``, in item-index order) so that serving
needs no dataset. Columns a dataset lacks are simply absent: a filter on one is refused by name
rather than silently passing everything. Older bundles hold ``item_id`` alone.
"""

from __future__ import annotations

import difflib
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

CATALOG_COLUMNS: tuple[str, ...] = (
    "item_id",
    "title",
    "brand",
    "category",
    "price",
    "in_stock",
    "description",
    "attributes",
)


class CatalogError(ValueError):
    """A request names a catalog value or column this catalog does not have."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def catalog_frame(items: pd.DataFrame) -> pd.DataFrame:
    """The columns of ``items`` a bundle keeps, in the dataset's item order."""
    return items[[c for c in CATALOG_COLUMNS if c in items.columns]].reset_index(drop=True)


def _text(column: pd.Series) -> np.ndarray:
    return column.fillna("").astype(str).to_numpy(dtype=object)


MAX_LISTED_VALUES = 20  # an error lists this many valid values: enough to spot the spelling


def _attribute_dict(text: str) -> dict[str, object]:
    # a malformed row reads as "no attributes": one bad row must not take serving down
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _shown(value: object) -> str:
    """An attribute value as text ("" absent); a list reads as its values, comma-separated."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass(frozen=True)
class AttributeTable:
    """Every item's attributes parsed once per catalog: one (I,) column per key, so a filter
    compares arrays instead of parsing JSON per request."""

    keys: tuple[str, ...]  # the catalog's spelling, first seen first
    shown: dict[str, np.ndarray]  # key -> (I,) str as the catalog has it, "" absent
    lower: dict[str, np.ndarray]  # key -> (I,) lowercase ``shown``
    # key -> (I,) frozenset of lowercase values, for keys holding lists (e.g. genres):
    # such an item matches when any of its values is asked for
    many: dict[str, np.ndarray]
    values: dict[str, tuple[str, ...]]  # key -> distinct lowercase values, most common first

    @classmethod
    def parse(cls, raw: np.ndarray) -> AttributeTable:
        frame = pd.DataFrame([_attribute_dict(t) for t in raw], dtype=object)
        shown, lower, many, values = {}, {}, {}, {}
        for key in frame.columns:
            column = frame[key]
            shown[key] = np.array([_shown(v) for v in column], dtype=object)
            lower[key] = np.char.lower(shown[key].astype(str)).astype(object)
            if column.map(lambda v: isinstance(v, list)).any():
                sets = [frozenset(_shown(x).lower() for x in (v if isinstance(v, list) else [v]))
                        - {""} for v in column]  # fmt: skip
                many[key] = np.empty(len(sets), dtype=object)
                many[key][:] = sets
                counts = Counter(v for s in sets for v in s)
            else:
                counts = Counter(v for v in lower[key] if v)
            values[key] = tuple(v for v, _ in sorted(counts.items(), key=lambda c: (-c[1], c[0])))
        return cls(tuple(str(k) for k in frame.columns), shown, lower, many, values)

    def key(self, name: str, param: str) -> str:
        """The catalog spelling of attribute ``name`` (any case); unknown is a CatalogError."""
        found = {k.lower(): k for k in self.keys}.get(name.strip().lower())
        if found is None:
            raise CatalogError(
                f"{param}: unknown attribute {name!r}; the catalog's attributes are "
                f"{list(self.keys)}",
                param=param,
            )
        return found

    def match(self, name: str, wanted: Iterable[str], ids: np.ndarray, param: str) -> np.ndarray:
        """(n,) bool: items ``ids`` whose ``name`` attribute is one of ``wanted`` (any case).

        Raises :class:`CatalogError` naming an unknown attribute or value and the valid ones.
        """
        key = self.key(name, param)
        keys = [w.strip().lower() for w in wanted]
        known = set(self.values[key])
        for value, asked in zip(keys, wanted, strict=True):
            if value not in known:
                listed = list(self.values[key][:MAX_LISTED_VALUES])
                more = len(known) - len(listed)
                close = difflib.get_close_matches(value, list(known), n=3)
                raise CatalogError(
                    f"{param}: unknown {key} {asked!r}; the catalog's {key} values are {listed}"
                    + (f" and {more} more" if more > 0 else "")
                    + (f"; did you mean {close}?" if close else ""),
                    param=param,
                )
        if key in self.many:
            wanted_set = set(keys)
            return np.array([bool(s & wanted_set) for s in self.many[key][ids]], dtype=bool)
        return np.isin(self.lower[key][ids], keys)

    def of(self, index: int) -> dict[str, str]:
        """One item's attributes as text, the absent ones left out."""
        return {k: str(self.shown[k][index]) for k in self.keys if self.shown[k][index]}


@dataclass
class Catalog:
    """Column arrays aligned with the bundle's item indexes; absent columns are None."""

    item_ids: np.ndarray  # (I,) str
    title: np.ndarray | None = None  # (I,) str
    brand: np.ndarray | None = None  # (I,) str, "" unknown
    category: np.ndarray | None = None  # (I,) str "A > B > C", "" unknown
    price: np.ndarray | None = None  # (I,) float64, NaN unknown
    in_stock: np.ndarray | None = None  # (I,) bool
    description: np.ndarray | None = None  # (I,) str
    attributes: np.ndarray | None = None  # (I,) JSON str
    _category_masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _brand_lookup: dict[str, str] | None = field(default=None, repr=False)
    _index: dict[str, int] | None = field(default=None, repr=False)
    _attributes: AttributeTable | None = field(default=None, repr=False)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Catalog:
        cols = set(frame.columns)

        def text(name: str) -> np.ndarray | None:
            return _text(frame[name]) if name in cols else None

        price = None
        if "price" in cols:
            price = pd.to_numeric(frame["price"], errors="coerce").to_numpy(np.float64)
        in_stock = None
        if "in_stock" in cols:
            in_stock = frame["in_stock"].fillna(True).to_numpy(dtype=bool)
        category = text("category")
        if category is not None:  # one spelling of the separator, so prefixes compare as text
            category = np.array(
                [" > ".join(p.strip() for p in c.split(">") if p.strip()) for c in category],
                dtype=object,
            )
        return cls(
            item_ids=frame["item_id"].astype(str).to_numpy(dtype=object),
            title=text("title"),
            brand=text("brand"),
            category=category,
            price=price,
            in_stock=in_stock,
            description=text("description"),
            attributes=text("attributes"),
        )

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def index(self) -> dict[str, int]:
        """item id -> item index, built once per catalog."""
        if self._index is None:
            self._index = {str(item): i for i, item in enumerate(self.item_ids)}
        return self._index

    def __repr__(self) -> str:
        return f"Catalog({len(self)} items, columns={self.columns})"

    @property
    def columns(self) -> list[str]:
        return [c for c in CATALOG_COLUMNS if c == "item_id" or getattr(self, c) is not None]

    def require(self, column: str, param: str) -> np.ndarray:
        values: np.ndarray | None = getattr(self, column)
        if values is None:
            raise CatalogError(
                f"{param}: this bundle's catalog has no {column!r} column; it has {self.columns}",
                param=param,
            )
        return values

    def categories(self, depth: int | None = None) -> list[str]:
        """Distinct category paths, or their prefixes of ``depth`` levels."""
        paths = self.require("category", "categories")
        if depth is not None:
            paths = np.array([" > ".join(p.split(" > ")[:depth]) for p in paths], dtype=object)
        return sorted({p for p in paths if p})

    def category_mask(self, prefix: str, param: str = "categories") -> np.ndarray:
        """(I,) bool: items whose category path is ``prefix`` or lies under it (any case)."""
        paths = self.require("category", param)
        key = " > ".join(p.strip() for p in prefix.split(">") if p.strip()).lower()
        mask = self._category_masks.get(key)
        if mask is None:
            lowered = np.char.lower(paths.astype(str))
            mask = (lowered == key) | np.char.startswith(lowered, key + " > ")
            if not mask.any():
                options = self.categories(depth=1)
                close = difflib.get_close_matches(prefix, self.categories(), n=3)
                raise CatalogError(
                    f"{param}: unknown category {prefix!r}; top-level categories are {options}"
                    + (f"; did you mean {close}?" if close else ""),
                    param=param,
                )
            self._category_masks[key] = mask
        return mask

    def brand_keys(self, brands: Iterable[str], param: str = "brands") -> set[str]:
        """The catalog spelling of each brand (matched case-insensitively); unknown is an error."""
        values = self.require("brand", param)
        if self._brand_lookup is None:
            self._brand_lookup = {b.lower(): b for b in set(values) if b}
        out = set()
        for brand in brands:
            found = self._brand_lookup.get(brand.strip().lower())
            if found is None:
                close = difflib.get_close_matches(brand, list(self._brand_lookup.values()), n=3)
                raise CatalogError(
                    f"{param}: unknown brand {brand!r}; the catalog has "
                    f"{len(self._brand_lookup)} brands"
                    + (
                        f", e.g. {close}"
                        if close
                        else f", e.g. {sorted(self._brand_lookup.values())[:5]}"
                    ),
                    param=param,
                )
            out.add(found)
        return out

    def attribute_table(self, param: str = "attributes") -> AttributeTable:
        """The parsed attributes, built on first use; a catalog without them is a CatalogError."""
        if self._attributes is None:
            self._attributes = AttributeTable.parse(self.require("attributes", param))
        return self._attributes

    def item_attributes(self, index: int) -> dict[str, str]:
        """One item's attributes as text ({} when the catalog has none)."""
        return {} if self.attributes is None else self.attribute_table().of(index)

    def leaf(self, idx: np.ndarray) -> np.ndarray:
        """(n,) category path of each item index ("" unknown; item id when no category)."""
        if self.category is None:
            return np.asarray(self.item_ids[idx])
        return np.asarray(self.category[idx])

    def row(self, index: int) -> dict[str, object]:
        out: dict[str, object] = {}
        for column in self.columns:
            value = getattr(self, "item_ids" if column == "item_id" else column)[index]
            out[column] = value.item() if isinstance(value, np.generic) else value
        price = out.get("price")
        if isinstance(price, float) and np.isnan(price):
            out["price"] = None
        return out

    def rows(self, idx: Sequence[int]) -> list[dict[str, object]]:
        return [self.row(int(i)) for i in idx]
