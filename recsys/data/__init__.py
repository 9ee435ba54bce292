"""Datasets in canonical form: the contract, importers, the synthetic shop, and statistics."""

from recsys.data.contract import EVENTS, Dataset, DatasetError, load_dataset

__all__ = ["EVENTS", "Dataset", "DatasetError", "load_dataset"]
