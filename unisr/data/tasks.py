"""Benchmark tasks: one small YAML each (loader, source files, text template, query protocol, split)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unisr.config import from_mapping, project_root, read_yaml, resource_dir
from unisr.data.queries import ItemQueryConfig
from unisr.data.text import DEFAULT_TEXT_FIELDS
from unisr.errors import UnisrError

DEFAULT_TASK = "synthetic"
QUERY_PROTOCOLS = ("category_path", "item_specific", "log", "none")
DATA_ROOT_ENV = "UNISR_DATA_ROOT"
TASKS_DIR_ENV = "UNISR_TASKS_DIR"


@dataclass
class QueryProtocolConfig:
    protocol: str = "none"  # category_path | item_specific | log | none
    log: str | None = None  # JSONL query log (protocol 'log' on sources that carry no log of their own)
    item_specific: ItemQueryConfig = field(default_factory=ItemQueryConfig)  # settings of protocol 'item_specific'
    seed: int = 0  # seed of the random choices of the protocol


@dataclass
class TaskConfig:
    name: str = ""  # task name, recorded in the manifest
    description: str = ""  # one line shown by `unisr data stats`
    loader: str = ""  # loader name (see unisr.data.loaders.LOADERS)
    files: dict[str, str] = field(default_factory=dict)  # loader argument → source file, relative to the data root
    options: dict[str, Any] = field(default_factory=dict)  # other loader arguments (synthetic settings, min_count)
    text_fields: list[str] = field(default_factory=lambda: list(DEFAULT_TEXT_FIELDS))  # fields rendered into the embedded text
    queries: QueryProtocolConfig = field(default_factory=QueryProtocolConfig)  # search-query protocol
    min_sequence_length: int = 3  # users with fewer items are dropped (and counted)
    cold_start: bool = False  # hold out a share of test items from all training data (TIGER)
    cold_start_share: float = 0.05  # share of distinct test items held out when cold_start is on
    seed: int = 0  # seed of the cold-start draw
    allow_items_without_text: bool = False  # keep items whose rendered text is empty (counted) instead of failing
    published: dict[str, int] = field(default_factory=dict)  # published counts (users, items, interactions) to check against

    def __post_init__(self):
        if self.queries.protocol not in QUERY_PROTOCOLS:
            raise UnisrError(
                f"task {self.name!r}: unknown query protocol {self.queries.protocol!r} (choose from {', '.join(QUERY_PROTOCOLS)})"
            )
        if not 0 < self.cold_start_share < 1:
            raise UnisrError(f"task {self.name!r}: cold_start_share must lie between 0 and 1, got {self.cold_start_share}")
        if self.min_sequence_length < 3:
            raise UnisrError(f"task {self.name!r}: min_sequence_length must be at least 3 (train, valid and test items)")


def tasks_dir() -> Path:
    return resource_dir("tasks", TASKS_DIR_ENV)


def available_tasks() -> list[str]:
    folder = tasks_dir()
    return sorted(path.stem for path in folder.glob("*.yaml")) if folder.is_dir() else []


def load_task(name_or_path: str) -> TaskConfig:
    """A task by name (``tasks/<name>.yaml``) or by the path of a YAML file."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = tasks_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(available_tasks()) or "none found"
        raise UnisrError(f"unknown task {name_or_path!r} (known tasks: {known}; or pass the path of a task YAML)")
    mapping = read_yaml(path)
    mapping.setdefault("name", path.stem)
    return from_mapping(TaskConfig, mapping, str(path))


def resolve_data_root(data_root: str | Path | None = None) -> Path | None:
    """``--data-root``, else $UNISR_DATA_ROOT, else a ``shared/data`` beside the working or source directory."""
    if data_root:
        return Path(data_root)
    if os.environ.get(DATA_ROOT_ENV):
        return Path(os.environ[DATA_ROOT_ENV])
    for base in (Path.cwd(), Path.cwd().parent, project_root().parent):
        candidate = base / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def resolve_source_files(task: TaskConfig, data_root: Path | None) -> dict[str, Path]:
    """Absolute paths of the task's source files; a missing one is an error that says where it was looked for."""
    resolved = {}
    for argument, relative in task.files.items():
        path = Path(relative)
        if not path.is_absolute():
            if data_root is None:
                raise UnisrError(
                    f"task {task.name!r} reads {relative}, but no data root was found (pass --data-root DIR or set {DATA_ROOT_ENV})"
                )
            path = data_root / path
        if not path.exists():
            raise UnisrError(f"{path}: source file of task {task.name!r} not found (download it there, or pass --data-root DIR)")
        resolved[argument] = path
    return resolved
