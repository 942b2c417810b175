"""Resuming an interrupted decoder training safely: same settings, a checkpoint of this model, the whole metrics history.

A training writes the settings it started with into ``<out>.partial/training_settings.json``. A resume
may change only how long and where it runs (``RESUMABLE_CHANGES``); any other change would make the
continued run a different experiment, so it is refused and named. The checkpoint is read with
``weights_only=True`` (no pickle) and its weights must fit the model. Lightning's CSV logger starts a
fresh ``metrics.csv`` on resume; the rows of the interrupted part are put back in front of the new ones.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import warnings
from pathlib import Path

import torch

from unisr.config import as_json_value, from_mapping
from unisr.decoder.config import DecoderConfig
from unisr.errors import InputFileError, UnisrError, UnisrWarning
from unisr.io import atomic_write_bytes, read_json

TRAINING_SETTINGS = "training_settings.json"
METRICS = "metrics.csv"
RESUMABLE_CHANGES = frozenset(
    {
        "epochs",
        "max_minutes",
        "patience",
        "progress",
        "threads",
        "accelerator",
        "precision",
        "devices",
        "strategy",
        "num_nodes",
        "guidance_grid",
        "guidance_priors",
        "cold_share",
    }
)
_RESTART = "pass --overwrite to start again"


def resumable_config(partial: Path, config: DecoderConfig) -> DecoderConfig:
    """``config`` if the interrupted training in ``partial`` may continue under it; a one-line error naming what changed."""
    path = Path(partial) / TRAINING_SETTINGS
    if not path.is_file():
        raise UnisrError(f"{partial}: no {TRAINING_SETTINGS} (the training was started by an older unisr); {_RESTART}")
    started = dataclasses.asdict(from_mapping(DecoderConfig, read_json(path), str(path)))
    now = dataclasses.asdict(config)
    changed = {key: (started[key], now[key]) for key in now if as_json_value(started.get(key)) != as_json_value(now[key])}
    refused = {key: values for key, values in changed.items() if key not in RESUMABLE_CHANGES}
    if refused:
        shown = ", ".join(f"{key} {before!r} → {after!r}" for key, (before, after) in sorted(refused.items()))
        raise UnisrError(f"cannot resume {partial}: settings differ from the interrupted training ({shown}); keep them or {_RESTART}")
    if changed:
        shown = ", ".join(f"{key} {before!r} → {after!r}" for key, (before, after) in sorted(changed.items()))
        warnings.warn(f"resuming {partial} with changed settings: {shown}", UnisrWarning, stacklevel=2)
    return config


def check_checkpoint(path: Path, module: torch.nn.Module) -> None:
    """Refuse a checkpoint that is not a plain-tensor Lightning checkpoint of ``module`` (read without unpickling code)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and torch raise many types for a foreign or damaged file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputFileError(path, f"not a checkpoint unisr can resume from ({reason[:200]})", _RESTART) from None
    weights = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(weights, dict):
        raise InputFileError(path, "not a Lightning checkpoint (no state_dict)", _RESTART)
    expected = module.state_dict()
    if set(weights) != set(expected) or any(tuple(weights[name].shape) != tuple(expected[name].shape) for name in expected):
        raise InputFileError(path, "checkpoint of another model (its weights do not fit this configuration)", _RESTART)


def read_metrics(log_dir: Path) -> list[dict[str, str]]:
    """Rows of ``metrics.csv`` written so far (none if there is no file)."""
    path = Path(log_dir) / METRICS
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def keep_metrics_history(log_dir: Path, earlier: list[dict[str, str]]) -> None:
    """Put the interrupted part's rows back in front of what the resumed part logged (columns united)."""
    if not earlier:
        return
    resumed = read_metrics(log_dir)
    first_resumed_epoch = min((int(float(row["epoch"])) for row in resumed if row.get("epoch")), default=None)
    kept = [row for row in earlier if first_resumed_epoch is None or not row.get("epoch") or int(float(row["epoch"])) < first_resumed_epoch]
    rows = kept + resumed
    columns = sorted({column for row in rows for column in row})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(Path(log_dir) / METRICS, buffer.getvalue().encode("utf-8"))
