"""Data layer: loaders, query protocols, leave-one-out splits and the prepared-dataset format."""

from unisr.data.dataset import PreparedDataset
from unisr.data.prepare import prepare
from unisr.data.schema import Catalog, Item, Query, QueryLogEvent, RawData, RecSplit, UserSequence
from unisr.data.stats import DatasetStats, dataset_stats, format_stats
from unisr.data.tasks import TaskConfig, load_task

__all__ = [
    "Catalog",
    "DatasetStats",
    "Item",
    "PreparedDataset",
    "Query",
    "QueryLogEvent",
    "RawData",
    "RecSplit",
    "TaskConfig",
    "UserSequence",
    "dataset_stats",
    "format_stats",
    "load_task",
    "prepare",
]
