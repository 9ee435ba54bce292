"""Response of GET /v1/items/{item_id}/similar."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SimilarItem(BaseModel):
    item_id: str = Field(description="Catalog item id.")
    score: float = Field(description="The source's similarity score, best first.")


class SimilarResponse(BaseModel):
    model_version: str = Field(description="Version of the artifact bundle that answered.")
    item_id: str = Field(description="The item the others are similar to.")
    source: str = Field(
        description="Candidate source that answered: the first of covisit, als, attributes, "
        "popular in the bundle."
    )
    items: list[SimilarItem] = Field(description="Similar items, the item itself excluded.")
