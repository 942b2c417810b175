"""Checks of values handed to the public API and of settings: a wrong type or range is one UnisrError naming the argument.

Every ``check_*`` returns the value in its canonical type (a Path, a list of str, ...) so callers use what was checked.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unisr.errors import UnisrError


def _shown(value: Any) -> str:
    """``value`` with its type, short enough for one line."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def is_integer(value: Any) -> bool:
    """An int (numpy's too), never a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float (numpy's too), never a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Bounds:
    """An allowed range: ``minimum``/``maximum`` inclusive, ``above``/``below`` exclusive; None = unbounded."""

    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    below: float | None = None

    def holds(self, value: float) -> bool:
        if isinstance(value, float) and math.isnan(value):
            return False
        return (
            (self.minimum is None or value >= self.minimum)
            and (self.maximum is None or value <= self.maximum)
            and (self.above is None or value > self.above)
            and (self.below is None or value < self.below)
        )

    def describe(self) -> str:
        low = f"[{self.minimum:g}" if self.minimum is not None else f"({self.above:g}" if self.above is not None else None
        high = f"{self.maximum:g}]" if self.maximum is not None else f"{self.below:g})" if self.below is not None else None
        if low and high:
            return f"lie in {low}, {high}"
        if self.minimum is not None:
            return f"be at least {self.minimum:g}"
        if self.above is not None:
            return f"be greater than {self.above:g}"
        if self.maximum is not None:
            return f"be at most {self.maximum:g}"
        if self.below is not None:
            return f"be less than {self.below:g}"
        return "be a number"


AT_LEAST_0 = Bounds(minimum=0)
AT_LEAST_1 = Bounds(minimum=1)
POSITIVE = Bounds(above=0)
DROPOUT = Bounds(minimum=0, below=1)


def check_int(value: Any, name: str, bounds: Bounds | None = None) -> int:
    """``value`` as an int; a bool, float, str or None is refused."""
    if not is_integer(value):
        raise UnisrError(f"{name}: expected an integer, got {_shown(value)}")
    if bounds is not None and not bounds.holds(value):
        raise UnisrError(f"{name}={value}: must {bounds.describe()}")
    return int(value)


def check_number(value: Any, name: str, bounds: Bounds | None = None) -> float:
    """``value`` as a float (ints allowed); a bool, str, None or NaN is refused."""
    if not is_number(value) or math.isnan(float(value)):
        raise UnisrError(f"{name}: expected a number, got {_shown(value)}")
    if bounds is not None and not bounds.holds(float(value)):
        raise UnisrError(f"{name}={value}: must {bounds.describe()}")
    return float(value)


def check_optional_number(value: Any, name: str, bounds: Bounds | None = None) -> float | None:
    return None if value is None else check_number(value, name, bounds)


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise UnisrError(f"{name}: expected True or False, got {_shown(value)}")
    return value


def check_optional_bool(value: Any, name: str) -> bool | None:
    return None if value is None else check_bool(value, name)


def check_text(value: Any, name: str, what: str = "text") -> str:
    """A non-blank str (bytes are refused: decode them first)."""
    if not isinstance(value, str):
        raise UnisrError(f"{name}: expected {what} (a str), got {_shown(value)}")
    if not value.strip():
        raise UnisrError(f"{name}: empty {what}")
    return value


def check_optional_text(value: Any, name: str, what: str = "text") -> str | None:
    return None if value is None else check_text(value, name, what)


def check_texts(values: Any, name: str, what: str = "item id", allow_empty: bool = True) -> list[str]:
    """A list or tuple of non-blank str (a single str is refused: it is not a list of them)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise UnisrError(f"{name}: expected a list of {what}s (str), got {_shown(values)}")
    for position, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise UnisrError(f"{name}[{position}]: expected a non-empty {what} (a str), got {_shown(value)}")
    if not values and not allow_empty:
        raise UnisrError(f"{name}: give at least one {what}")
    return list(values)


def check_choice(value: Any, name: str, allowed: Collection[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise UnisrError(f"{name} {value!r}: choose one of {', '.join(allowed)}")
    return value


def check_choices(values: Any, name: str, allowed: Collection[str]) -> tuple[str, ...]:
    """Names from ``allowed``: a list/tuple of str, or one comma-separated str."""
    if isinstance(values, str):
        values = [part.strip() for part in values.split(",") if part.strip()]
    if not isinstance(values, Sequence) or not values:
        raise UnisrError(f"{name}: expected one or more of {', '.join(allowed)}, got {_shown(values)}")
    return tuple(check_choice(value, name, allowed) for value in values)


def check_path(value: Any, name: str) -> Path:
    """A str or os.PathLike naming a path (not bytes, not empty)."""
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise UnisrError(f"{name}: expected a path (str or pathlib.Path), got {_shown(value)}")
    if not str(value).strip():
        raise UnisrError(f"{name}: empty path")
    return Path(value)


def check_optional_path(value: Any, name: str) -> Path | None:
    return None if value is None else check_path(value, name)


def check_instance(value: Any, name: str, cls: type, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, cls):
        raise UnisrError(f"{name}: expected a {cls.__name__}, got {_shown(value)}")
    return value


def check_settings(owner: str, values: Mapping[str, Any], bounds: Mapping[str, Bounds]) -> None:
    """Each named setting within its bounds: ``{owner} {name}={value} must ...`` otherwise."""
    for name, allowed in bounds.items():
        value = values[name]
        if not allowed.holds(value):
            raise UnisrError(f"{owner} {name}={value!r}: must {allowed.describe()}")


# ----- the requests of a trained run (GenerativeRetriever's public methods)
def check_k(k: Any) -> int:
    return check_int(k, "k", AT_LEAST_1)


def check_users(users: Any, name: str = "users") -> list[str | None]:
    """One user id (or None) per request."""
    if isinstance(users, (str, bytes)) or not isinstance(users, Sequence):
        raise UnisrError(f"{name}: expected a list of user ids (str or None), got {_shown(users)}")
    return [check_optional_text(user, f"{name}[{position}]", "user id") for position, user in enumerate(users)]


def check_histories(histories: Any, name: str = "histories") -> list[list[str]]:
    """A list of histories, each a list of item ids (str), oldest first."""
    if isinstance(histories, (str, bytes)) or not isinstance(histories, Sequence):
        raise UnisrError(f"{name}: expected a list of histories (lists of item ids), got {_shown(histories)}")
    return [check_texts(history, f"{name}[{position}]") for position, history in enumerate(histories)]


def check_queries(queries: Any, name: str = "queries") -> list[str]:
    if isinstance(queries, (str, bytes)) or not isinstance(queries, Sequence):
        raise UnisrError(f"{name}: expected a list of query texts (str), got {_shown(queries)}")
    return [check_text(query, f"{name}[{position}]", "query") for position, query in enumerate(queries)]
