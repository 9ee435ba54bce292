"""The decision layer: filters, business rules, diversity and exploration after ranking."""

from recsys.decision.config import DecisionConfig, DecisionConfigError, load_decision_config
from recsys.decision.filters import Filters
from recsys.decision.stage import (
    Decision,
    DecisionEntry,
    DecisionRequest,
    DecisionStage,
    Removed,
)

__all__ = [
    "Decision",
    "DecisionConfig",
    "DecisionConfigError",
    "DecisionEntry",
    "DecisionRequest",
    "DecisionStage",
    "Filters",
    "Removed",
    "load_decision_config",
]
