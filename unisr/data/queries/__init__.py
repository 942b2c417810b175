"""Search-query protocols: real query logs, category-path queries (Van Gysel/Ai) and item-specific queries."""

from unisr.data.queries.category_path import category_path_queries, item_category_queries
from unisr.data.queries.common import leave_one_out_split, without_cold_items
from unisr.data.queries.item_specific import ItemQueryConfig, item_specific_queries
from unisr.data.queries.logs import log_queries, read_query_log

__all__ = [
    "ItemQueryConfig",
    "category_path_queries",
    "item_category_queries",
    "item_specific_queries",
    "leave_one_out_split",
    "log_queries",
    "read_query_log",
    "without_cold_items",
]
