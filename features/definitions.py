"""Feast objects of the repository: entities, batch sources, feature views, feature services.

The batch sources are parquet files at paths *relative to the runtime repository root*
(``data/sources/*.parquet``); Feast resolves them against the repo path, so a runtime directory
(for example an artifact bundle's ``features/`` subfolder) can be moved as a whole.
"""

from __future__ import annotations

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float32

from features.tables import ITEM_ACTIVITY_FEATURES, ITEM_CATALOG_FEATURES, USER_FEATURES

RANKER_VERSION = "ranker_v1"
"""The ranker version the FeatureService is named after (one service per model version)."""

PROJECT = "recsys"
SOURCES_DIR = "data/sources"

# view name -> (entity join key, ordered feature names); the order defines the columns of
# ITEM_FEATURES / USER_FEATURES (item views concatenated in this order).
ITEM_VIEWS: dict[str, tuple[str, ...]] = {
    "item_activity": ITEM_ACTIVITY_FEATURES,
    "item_catalog": ITEM_CATALOG_FEATURES,
}
USER_VIEWS: dict[str, tuple[str, ...]] = {"user_activity": USER_FEATURES}
VIEW_ENTITY: dict[str, str] = {**dict.fromkeys(ITEM_VIEWS, "item_id"),
                               **dict.fromkeys(USER_VIEWS, "user_id")}  # fmt: skip

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.STRING,
    description="A shopper (Dataset.interactions.user_id)",
)
item = Entity(
    name="item",
    join_keys=["item_id"],
    value_type=ValueType.STRING,
    description="A catalog item (Dataset.items.item_id)",
)
_ENTITY = {"item_id": item, "user_id": user}


def source_path(view: str) -> str:
    """Parquet path of a view's batch source, relative to the runtime repository root."""
    return f"{SOURCES_DIR}/{view}.parquet"


def _view(name: str, features: tuple[str, ...], description: str) -> FeatureView:
    entity = _ENTITY[VIEW_ENTITY[name]]
    return FeatureView(
        name=name,
        entities=[entity],
        # No expiry: the features are a snapshot of the training split, replaced as a whole by
        # the next materialization rather than aging out.
        ttl=timedelta(0),
        schema=[Field(name=f, dtype=Float32) for f in features],
        online=True,
        source=FileSource(
            name=f"{name}_source",
            path=source_path(name),
            timestamp_field="event_timestamp",
        ),
        description=description,
    )


item_activity = _view(
    "item_activity",
    ITEM_ACTIVITY_FEATURES,
    "Item popularity over all training and recent windows, conversion rates, age",
)
item_catalog = _view(
    "item_catalog",
    ITEM_CATALOG_FEATURES,
    "Price, price rank within the leaf category, category/brand codes, stock",
)
user_activity = _view(
    "user_activity",
    USER_FEATURES,
    "User activity, conversion shares, recency, preferred categories and price band",
)
FEATURE_VIEWS: tuple[FeatureView, ...] = (item_activity, item_catalog, user_activity)

ranker_service = FeatureService(
    name=RANKER_VERSION,
    features=list(FEATURE_VIEWS),
    description=f"Every feature the {RANKER_VERSION} ranker reads",
)


def repo_objects() -> list[object]:
    """Everything ``feast apply`` would register, in dependency order."""
    return [user, item, *FEATURE_VIEWS, ranker_service]
