"""Request and response models of the /admin/experiments routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ArmSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Arm name, e.g. 'control' or 'lgbm-v2'.",
    )
    bundle_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="Bundle the arm serves; null = the bundle the server serves now.",
    )
    ranker: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Ranker of that bundle; null = its default.",
    )
    share: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of shoppers shown this arm (a shadow arm: share of requests it "
        "computes a list for, logged but never shown). Ignored for the control, which takes "
        "what the candidates leave.",
    )
    shadow: bool = Field(default=False, description="Compute and log, never show.")


class CreateExperiment(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Experiment name (unique).",
    )
    salt: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Assignment salt: shoppers are bucketed by sha256(salt:user_id); null = the "
        "experiment name. A new salt reshuffles who sees what.",
    )
    control: ArmSpec = Field(
        default_factory=lambda: ArmSpec(name="control"),
        description="The arm served today (its bundle_path null: the served bundle).",
    )
    candidates: list[ArmSpec] = Field(
        min_length=1, max_length=8, description="Candidate and shadow arms."
    )


class RampRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    arm: str = Field(min_length=1, max_length=64, description="The candidate arm to ramp.")
    share: float = Field(ge=0.0, le=1.0, description="Its new traffic share, e.g. 0.05, 0.25.")
    reason: str = Field(default="", max_length=500, description="Why, for the history.")


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    arm: str = Field(min_length=1, max_length=64, description="The arm every shopper now sees.")
    reason: str = Field(default="", max_length=500, description="Why, for the history.")


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str = Field(default="", max_length=500, description="Why, for the history.")


class ArmState(BaseModel):
    name: str = Field(description="Arm name.")
    bundle_path: str | None = Field(description="Its bundle; null = the served bundle.")
    ranker: str | None = Field(description="Its ranker; null = the bundle's default.")
    share: float = Field(description="Traffic share (candidates and shadows).")
    shadow: bool = Field(description="Computed and logged, never shown.")
    model_version: str | None = Field(
        default=None, description="Version of the bundle it serves, once loaded."
    )


class ExperimentState(BaseModel):
    name: str = Field(description="Experiment name.")
    status: Literal["running", "promoted", "rolled_back"] = Field(description="Where it stands.")
    salt: str = Field(description="Assignment salt.")
    control: ArmState = Field(description="The control arm.")
    candidates: list[ArmState] = Field(description="Candidate and shadow arms.")
    winner: str | None = Field(description="The promoted arm, if any.")
    revision: int = Field(description="Bumped by every change.")
    history: list[dict[str, Any]] = Field(
        description="What changed, when and why: create, ramp, promote, rollback (automatic "
        "rollbacks say which guardrail fired)."
    )


class ExperimentList(BaseModel):
    experiments: list[ExperimentState] = Field(description="Every experiment, newest first.")
