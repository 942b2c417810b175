"""Small file helpers shared by every stage: JSONL, hashing, atomic directory writes and output locks."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import types
from collections.abc import Iterable, Iterator
from pathlib import Path

from unisr.errors import InputFileError, UnisrError


def read_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-empty line; a bad line (or text that is not UTF-8) is a one-line error."""
    with open(path, encoding="utf-8") as handle:
        lines = enumerate(handle, start=1)
        while True:
            try:
                number, line = next(lines)
            except StopIteration:
                return
            except UnicodeDecodeError as error:
                raise InputFileError(path, f"not UTF-8 text ({error.reason})", "re-encode the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputFileError(path, f"not valid JSON ({error.msg})", "fix or remove that line", number) from None
            if not isinstance(record, dict):
                raise InputFileError(path, "expected a JSON object per line", "fix or remove that line", number)
            yield number, record


def write_jsonl(path: Path, records: Iterable[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_json(path: Path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise InputFileError(path, "file not found", "check the path") from None
    except json.JSONDecodeError as error:
        raise InputFileError(path, f"not valid JSON ({error.msg})", "fix the file", error.lineno) from None


def write_json(path: Path, value) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def sha1_text(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def require_file(path: Path, what: str, fix: str) -> Path:
    if not path.is_file():
        raise InputFileError(path, f"{what} not found", fix)
    return path


def refuse_existing(out: Path, overwrite: bool = False) -> None:
    """One-line error when an output directory exists and ``overwrite`` is off."""
    if Path(out).exists() and not overwrite:
        raise UnisrError(f"{out}: already exists (choose another --out or pass --overwrite)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def give_usual_permissions(root: Path) -> None:
    """Folders 0777 and files 0666 minus the umask under ``root`` (``mkdtemp``/``mkstemp`` create 0700/0600)."""
    mask = _umask()
    root = Path(root)
    os.chmod(root, 0o777 & ~mask)
    for folder, subfolders, files in os.walk(root):
        for name in subfolders:
            os.chmod(Path(folder) / name, 0o777 & ~mask)
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink():
                os.chmod(path, 0o666 & ~mask)


def _staging_prefix(final: Path) -> str:
    return f".{final.name}."


def clear_stale_staging(final: Path, suffixes: tuple[str, ...] = (".tmp", ".old")) -> None:
    """Remove staging and swap folders (``.NAME.*<suffix>``) a killed writer of ``final`` left beside it (hold its lock)."""
    final = Path(final)
    if not final.parent.is_dir():
        return
    for leftover in final.parent.glob(f"{glob.escape(_staging_prefix(final))}*"):
        if leftover.is_dir() and leftover.name.endswith(suffixes):
            shutil.rmtree(leftover, ignore_errors=True)


def replace_directory(staging: Path, final: Path) -> None:
    """Swap ``staging`` in as ``final``: the old ``final`` is renamed aside first and deleted last, so one of them always exists."""
    staging, final = Path(staging), Path(final)
    if not final.exists():
        os.replace(staging, final)
        return
    aside = final.with_name(f"{_staging_prefix(final)}{os.getpid()}.old")
    os.replace(final, aside)
    try:
        os.replace(staging, final)
    except BaseException:
        os.replace(aside, final)
        raise
    shutil.rmtree(aside, ignore_errors=True)


_held_locks: dict[Path, tuple[int, int]] = {}  # lock path -> (file descriptor, depth): re-entrant within one process


def lock_path(final: Path) -> Path:
    final = Path(final)
    return final.with_name(f"{_staging_prefix(final)}lock")


@contextlib.contextmanager
def output_lock(final: Path) -> Iterator[None]:
    """Hold an exclusive lock on the output ``final`` (a ``.NAME.lock`` file beside it) while writing it.

    A second writer of the same output gets a one-line error instead of destroying the first one's
    files. The lock dies with its process (``flock``), so a killed writer never leaves a stale lock.
    """
    path = lock_path(final).absolute()
    if path in _held_locks:
        descriptor, depth = _held_locks[path]
        _held_locks[path] = (descriptor, depth + 1)
        try:
            yield
        finally:
            descriptor, depth = _held_locks[path]
            _held_locks[path] = (descriptor, depth - 1)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = _acquire(path, Path(final))
    _held_locks[path] = (descriptor, 1)
    try:
        yield
    finally:
        del _held_locks[path]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(descriptor)  # closing releases the lock


def launched_worker() -> bool:
    """True in a process that a DDP launcher started for a rank other than the first (it re-runs the command)."""
    return any(int(os.environ.get(name, "0") or 0) > 0 for name in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def _acquire(path: Path, final: Path) -> int:
    """Open and lock ``path``; retry when a finishing writer unlinked the file between our open and our lock."""
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(descriptor)
            raise UnisrError(
                f"{final}: another unisr process (pid {holder}) is writing it; wait for it to finish or choose another --out"
            ) from None
        try:
            same_file = os.fstat(descriptor).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, str(os.getpid()).encode("ascii"), 0)
            return descriptor
        os.close(descriptor)


@contextlib.contextmanager
def atomic_directory(final: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``final`` (see ``replace_directory``).

    The output is locked meanwhile (``output_lock``); on any error the temporary directory is
    removed, so ``final`` is never half written. Its folders and files get the usual permissions.
    """
    final = Path(final)
    with output_lock(final):
        refuse_existing(final, overwrite)
        clear_stale_staging(final)
        staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(final), suffix=".tmp", dir=final.parent))
        try:
            yield staging
            give_usual_permissions(staging)
            replace_directory(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write a file through a temporary sibling and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the permissions open() would
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_json_atomic(path: Path, value) -> None:
    """``write_json`` through a temporary sibling and a rename (readers never see half a file)."""
    atomic_write_bytes(Path(path), (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


class _LazyModule(types.ModuleType):
    """Stands in for a module until one of its attributes is read; then imports it and reads from it."""

    def __getattr__(self, attribute: str):  # only for attributes the stand-in does not have itself
        return getattr(importlib.import_module(self.__name__), attribute)


def lazy_module(name: str) -> types.ModuleType:
    """The module ``name``, imported on first attribute access. The stand-in is not put in ``sys.modules``, so code
    that walks ``sys.modules`` (``inspect.getmodule``, run inside other imports) can never start the import midway."""
    return sys.modules.get(name) or _LazyModule(name)
