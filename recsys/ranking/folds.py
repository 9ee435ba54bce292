"""Earlier time folds: more ranking groups, none of them seen by the sources that rank them.

A user's validation item gives the rankers one training group. The items before it could give
more, but the sources were fitted on them: co-visitation counted the very pair, SASRec learned
to predict it, ALS fitted the interaction. Groups labelled with them would show the ranker
sources that already know the answer, and it would learn to trust them more than it should
when serving. So fold ``k`` refits the sources (and rebuilds the feature tables) on every
sequence without its last ``k`` items, then labels the item just before the held-out ones,
exactly as the validation item is labelled in the real fold. Sources whose fit reads only the
catalog (``catalog_only``) are shared, not refitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from models.base import TrainingData
from models.registry import make_model
from recsys.data.contract import Dataset
from recsys.data.sequences import EncodedDataset, Sequences
from recsys.data.split import EvalSet, leave_one_out
from recsys.ranking.features import FrameSpec, TableFeatures
from recsys.ranking.frame import RankingFrame
from recsys.ranking.train import RankerTrainConfig, subset, training_frame
from recsys.retrieval.retriever import Retriever
from recsys.retrieval.sources import CandidateSource, index_for

if TYPE_CHECKING:
    from recsys.artifacts import Bundle


def earlier(enc: EncodedDataset, k: int) -> EncodedDataset:
    """``enc`` with each sequence's last ``k`` items removed (every user keeps one at least)."""
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    seqs = enc.sequences
    drop = np.minimum(k, np.maximum(seqs.lengths - 1, 0))  # (U,)
    return replace(enc, sequences=seqs.drop_last(drop))


def refit_sources(
    sources: Sequence[CandidateSource], ds: Dataset, train: Sequences, progress: bool = False
) -> list[CandidateSource]:
    """The same sources fitted on ``train``, each with its ``refit_config``: no early stopping,
    so no target of ``train``'s fold chooses the epochs (those the first fit stopped at run)."""
    data = TrainingData(train, ds.items)
    no_targets = EvalSet.empty(train.n_items)
    out: list[CandidateSource] = []
    for source in tqdm(sources, desc="refit sources", disable=not progress, unit="src"):
        if source.model.catalog_only:
            out.append(source)
            continue
        model = make_model(source.name)
        config = source.model.refit_config()
        if config is not None:
            model.config = config  # type: ignore[attr-defined]  # seed included
        model.fit(data, valid=no_targets)
        index = index_for(model, train)  # an approximate index's effort tuned on these users
        out.append(CandidateSource(source.name, model, index, source.needs_history))
    return out


def restrict(eval_set: EvalSet, users: np.ndarray) -> EvalSet:
    """The part of ``eval_set`` whose users are among ``users``."""
    return subset(eval_set, np.flatnonzero(np.isin(eval_set.users, users)))


def refitted(
    retriever: Retriever, ds: Dataset, enc: EncodedDataset, train: Sequences, progress: bool = False
) -> tuple[Retriever, TableFeatures]:
    """``retriever``'s sources refitted on ``train`` (merged alike) and features built from it."""
    from features.tables import build_feature_tables

    sources = refit_sources(retriever.sources, ds, train, progress)
    features = TableFeatures(build_feature_tables(ds, enc, train), enc)
    return Retriever(sources, retriever.config), features


def earlier_frame(
    retriever: Retriever,
    ds: Dataset,
    enc: EncodedDataset,
    k: int,
    users: np.ndarray,
    spec: FrameSpec,
    config: RankerTrainConfig,
    progress: bool = False,
) -> RankingFrame:
    """Labelled rows of fold ``k`` for those of ``users`` (user indexes) it has a target for:
    sources merged as ``retriever`` merges them, features from the fold's own tables."""
    enc_k = earlier(enc, k)
    split_k = leave_one_out(enc_k)
    retriever_k, features_k = refitted(retriever, ds, enc_k, split_k.train, progress)
    fold_set = restrict(split_k.valid, users)
    return training_frame(retriever_k, fold_set, enc_k, features_k, spec, config, progress)


def validation_view(ds: Dataset, bundle: Bundle) -> Bundle:
    """``bundle`` as its rankers and served order were chosen: sources and features fitted on
    the training split. A refitted bundle's own know every validation target, so anything else
    chosen on validation users (an LLM blend weight) would be flattered by them."""
    if not bundle.refitted:
        return bundle
    from recsys.data.sequences import encode

    enc = encode(ds)
    retriever, features = refitted(bundle.retriever, ds, enc, leave_one_out(enc).train)
    ranking = bundle.ranking
    if ranking is not None:
        ranking = replace(ranking, features=features)
    return replace(bundle, retriever=retriever, ranking=ranking)
