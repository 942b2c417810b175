"""Typed configs: dataclasses with defaults, overridden by small YAML files and CLI options."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from unisr.errors import InputFileError, UnisrError

T = TypeVar("T")
CONFIGS_DIR_ENV = "UNISR_CONFIGS_DIR"
RESOURCES_PACKAGE_DIR = "_resources"  # where a built wheel carries tasks/ and configs/ (see setup.py)


def project_root() -> Path:
    """The folder holding this package: the source checkout (with tasks/ and configs/), or site-packages when installed."""
    return Path(__file__).resolve().parents[1]


def resource_dir(name: str, env: str | None = None) -> Path:
    """Folder ``name`` (``tasks`` or ``configs``): ``$env`` if set, else the copy inside an installed wheel, else the checkout's."""
    if env and os.environ.get(env):
        return Path(os.environ[env])
    packaged = Path(__file__).resolve().parent / RESOURCES_PACKAGE_DIR / name
    return packaged if packaged.is_dir() else project_root() / name


def configs_dir() -> Path:
    return resource_dir("configs", CONFIGS_DIR_ENV)


def load_config(cls: type[T], name_or_path: str | Path | None, **overrides: Any) -> T:
    """``cls`` defaults, updated by a YAML file (a path, or a name under configs/) and then by non-None ``overrides``."""
    mapping: dict[str, Any] = {}
    where = cls.__name__
    if name_or_path is not None:
        path = Path(name_or_path)
        if path.suffix not in (".yaml", ".yml"):
            path = configs_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in configs_dir().glob("*.yaml")))
            raise UnisrError(f"--config {name_or_path}: no such config (known: {known}; or pass the path of a YAML file)")
        mapping = read_yaml(path)
        where = str(path)
    chosen = {key: value for key, value in overrides.items() if value is not None}
    try:
        return from_mapping(cls, {**mapping, **chosen}, where, name_file=not chosen)
    except UnisrError:
        if chosen and name_or_path is not None:
            from_mapping(cls, mapping, where)  # when the file alone is at fault, its error names the file
        raise


def read_yaml(path: Path) -> dict:
    """A YAML mapping from ``path``; anything else is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found", "check the path")
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise InputFileError(path, f"not UTF-8 text ({error.reason})", "save the file as UTF-8") from None
    except yaml.YAMLError as error:
        line = getattr(getattr(error, "problem_mark", None), "line", None)
        raise InputFileError(path, "not valid YAML", "fix the syntax", None if line is None else line + 1) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputFileError(path, "expected a mapping of settings at the top level", "write `key: value` lines")
    return value


def from_mapping(cls: type[T], mapping: dict[str, Any] | None, where: str, name_file: bool = True) -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys and nested dataclasses are handled, with errors naming ``where``.

    ``name_file``: a setting out of range (refused by ``cls``'s own checks) is also reported with ``where``, the file it came from.
    """
    if mapping is not None and not isinstance(mapping, dict):
        raise UnisrError(f"{where}: expected a mapping of settings, got {type(mapping).__name__}")
    mapping = dict(mapping or {})
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted((key for key in mapping if key not in known), key=str)
    if unknown:
        raise UnisrError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(known)})")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in mapping.items():
        target = hints[name]
        if dataclasses.is_dataclass(target) and isinstance(value, dict):
            value = from_mapping(target, value, f"{where}.{name}")
        elif dataclasses.is_dataclass(target) and not isinstance(value, target):
            raise UnisrError(f"{where}.{name}: expected a mapping of settings, got {value!r}")
        else:
            value = _coerce(value, target, f"{where}.{name}")
        values[name] = value
    try:
        return cls(**values)
    except UnisrError as error:
        if not name_file or where == cls.__name__:
            raise
        raise UnisrError(f"{where}: {error}") from None


def _coerce(value: Any, target: Any, where: str) -> Any:
    origin = typing.get_origin(target)
    if origin in (typing.Union, types.UnionType):
        options = [option for option in typing.get_args(target) if option is not type(None)]
        if value is None:
            return None
        return _coerce(value, options[0], where) if len(options) == 1 else value
    if target is bool:
        if not isinstance(value, bool):
            raise UnisrError(f"{where}: expected true or false, got {value!r}")
        return value
    if target in (int, float):
        whole = target is int and not (isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer()))
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or whole or math.isnan(value):
            raise UnisrError(f"{where}: expected a number ({target.__name__}), got {value!r}")
        return target(value)
    if target is str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise UnisrError(f"{where}: expected text, got {value!r}")
        return str(value)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UnisrError(f"{where}: expected a list, got {value!r}")
        element = _element_type(target)
        if element is not None:
            value = [_coerce(part, element, f"{where}[{position}]") for position, part in enumerate(value)]
        return tuple(value) if origin is tuple else list(value)
    if origin is dict and not isinstance(value, dict):
        raise UnisrError(f"{where}: expected a mapping, got {value!r}")
    return value


def _element_type(target: Any) -> Any:
    """The element type of ``list[X]`` or ``tuple[X, ...]``; None when unknown or mixed."""
    arguments = [argument for argument in typing.get_args(target) if argument is not Ellipsis]
    return arguments[0] if len(set(arguments)) == 1 and arguments[0] in (int, float, str, bool) else None


def check_types(instance: Any, where: str) -> None:
    """Every field of dataclass ``instance`` has its annotated type (ints may stand for floats); fixes the container types.

    Run from ``__post_init__``, so a config built in Python is checked like one read from YAML.
    """
    hints = typing.get_type_hints(type(instance))
    for item in dataclasses.fields(instance):
        value = getattr(instance, item.name)
        target = hints[item.name]
        if dataclasses.is_dataclass(target):
            if not isinstance(value, target):
                raise UnisrError(f"{where} {item.name}: expected {target.__name__} settings, got {value!r}")
            continue
        object.__setattr__(instance, item.name, _coerce(value, target, f"{where} {item.name}"))


def as_json_value(value):
    """A setting as JSON reads it back (tuples become lists), for comparing stored settings with wanted ones."""
    return [as_json_value(part) for part in value] if isinstance(value, (list, tuple)) else value
