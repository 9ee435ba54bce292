"""The Feast feature repository of the engine (docs/architecture.md).

``features/feature_store.yaml`` is the repository configuration (SQLite online store by default,
Redis by configuration), :mod:`features.definitions` holds the entities, feature views and the
``ranker_v1`` FeatureService, :mod:`features.tables` computes the feature tables from the
training split, :mod:`features.store` applies and materializes them into a runtime directory,
and :mod:`features.online` serves them from an in-process cache over the online store.
"""

from features.definitions import RANKER_VERSION
from features.online import OnlineFeatures, feast_reference
from features.store import FeatureRepo, FeatureStoreConfig
from features.tables import (
    ITEM_FEATURES,
    USER_FEATURES,
    FeatureTables,
    brand_codes,
    build_feature_tables,
    category_codes,
    category_top_codes,
    code_vocab,
)

__all__ = [
    "ITEM_FEATURES",
    "RANKER_VERSION",
    "USER_FEATURES",
    "FeatureRepo",
    "FeatureStoreConfig",
    "FeatureTables",
    "OnlineFeatures",
    "brand_codes",
    "build_feature_tables",
    "category_codes",
    "category_top_codes",
    "code_vocab",
    "feast_reference",
]
