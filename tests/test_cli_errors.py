"""One error path for the CLI: every usage error, user error and bad file is one `error:` line, exit code 2, no traceback."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

from unisr import api
from unisr.cli import main as cli
from unisr.embeddings import EmbedConfig, embed_dataset, load_embeddings
from unisr.embeddings.cache import EmbeddingCache
from unisr.errors import InputFileError, UnisrWarning
from unisr.io import sha1_text


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], err


@pytest.fixture(autouse=True)
def no_debug_env(monkeypatch):
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["search", "RUN", "lamp", "-k", "abc"], ["'-k' / '--k'", "valid integer", "unisr search --help"]),  # bad int value
        (["search"], ["Missing argument", "run_dir", "unisr search --help"]),  # missing argument
        (["data", "tasks", "--bogus"], ["No such option: --bogus", "unisr data tasks --help"]),  # unknown option
        (["frob"], ["No such command 'frob'", "unisr --help"]),  # unknown command
        (["train", "D", "--codes", "C", "--epochs", "0"], ["'--epochs'", "greater than or equal to 1"]),  # out of range
        (["embed", "D", "--batch-size", "0"], ["'--batch-size'", "greater than or equal to 1"]),  # out of range
        (["data", "prepare", "nope"], ["unknown task 'nope'", "known tasks:"]),  # UnisrError
        (["train", "D", "--codes", "C", "--config", "nope"], ["--config nope", "no such config"]),  # UnisrError
        (["evaluate", "D", "-k", "0"], ["-k '0'", "positive"]),  # UnisrError raised by the CLI itself
    ],
)
def test_usage_and_user_errors_are_one_line(capsys, args, fragments):
    code, out, err = run(capsys, *args)
    assert_one_error_line(code, err, *fragments)
    assert out == ""


def test_debug_option_and_env_show_the_traceback(capsys, monkeypatch):
    code, _, err = run(capsys, "--debug", "data", "prepare", "nope")
    assert code == 2 and "Traceback (most recent call last)" in err and "UnisrError" in err
    assert err.splitlines()[-1].startswith("error: unknown task 'nope'")
    code, _, err = run(capsys, "--debug", "search", "RUN", "lamp", "-k", "abc")
    assert code == 2 and "Traceback" in err and err.splitlines()[-1].startswith("error: Invalid value for '-k'")
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    code, _, err = run(capsys, "frob")
    assert code == 2 and "Traceback" in err and err.splitlines()[-1].startswith("error: No such command 'frob'")


def test_debug_after_the_command_is_an_unknown_option_not_a_debug_switch(capsys):
    code, _, err = run(capsys, "data", "tasks", "--debug")
    assert_one_error_line(code, err, "No such option: --debug")


def test_help_and_bare_group(capsys):
    code, out, err = run(capsys, "--help")
    assert code == 0 and "--debug" in out and err == ""
    code, out, err = run(capsys, "data")  # a group alone prints its help (click's convention: exit code 2)
    assert code == 2 and "prepare" in out and "Traceback" not in err and "error" not in err


def test_eof_and_os_errors_inside_a_command_are_one_line(capsys, monkeypatch):
    def empty_file():
        raise EOFError("No data left in file")  # what numpy raises on a zero-byte file; typer turns it into a bare Abort

    monkeypatch.setattr(cli, "available_tasks", empty_file)
    code, _, err = run(capsys, "data", "tasks")
    assert_one_error_line(code, err, "unexpected end of data", "empty or truncated", "--debug")

    def unreadable():
        raise PermissionError(13, "Permission denied", "/some/tasks")

    monkeypatch.setattr(cli, "available_tasks", unreadable)
    code, _, err = run(capsys, "data", "tasks")
    assert_one_error_line(code, err, "/some/tasks: Permission denied")


def test_bugs_keep_their_traceback(monkeypatch):
    def bug():
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "available_tasks", bug)
    with pytest.raises(ZeroDivisionError):
        cli.main(["data", "tasks"])


def test_real_click_exceptions_are_handled_too():
    click = pytest.importorskip("click")
    assert cli._error_message(click.UsageError("No such option: --x")) == "No such option: --x"
    assert cli._error_message(click.BadParameter("bad", param_hint="'-k'")) == "Invalid value for '-k': bad"
    assert cli._error_message(RuntimeError("a bug")) is None


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return api.prepare_dataset("synthetic", tmp_path_factory.mktemp("cli-errors") / "synthetic")


def fill_cache(directory, texts, dimension: int = 8) -> None:
    """A cache shard holding a vector for every text, so embedding needs no model."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = sorted({sha1_text(text) for text in texts})
    buffer = io.BytesIO()
    np.savez(buffer, keys=np.array(keys), vectors=np.random.default_rng(0).normal(size=(len(keys), dimension)).astype(np.float32))
    (directory / "shard-00000-1.npz").write_bytes(buffer.getvalue())


def test_zero_byte_cache_shard_is_removed_with_a_warning(capsys, prepared, tmp_path):
    cache = tmp_path / "cache"
    fill_cache(cache, prepared.catalog.texts + [query.text for query in prepared.queries])
    empty = cache / "shard-00001-2.npz"
    empty.write_bytes(b"")
    code, out, err = run(capsys, "embed", str(prepared.root), "--cache-dir", str(cache), "--no-progress")
    assert code == 0, err
    assert "0 encoded" in out
    assert err.splitlines() == [err.strip()] and err.startswith("warning: embedding cache shard") and str(empty) in err
    assert "empty file" in err and "Traceback" not in err
    assert not empty.exists()
    code, _, err = run(capsys, "embed", str(prepared.root), "--cache-dir", str(cache), "--no-progress")  # repaired: no warning
    assert code == 0 and err == ""


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04truncated"])
def test_cache_skips_unreadable_shards(tmp_path, content):
    fill_cache(tmp_path, ["a", "b"])
    (tmp_path / "shard-00001-2.npz").write_bytes(content)
    with pytest.warns(UnisrWarning, match="unreadable"):
        cache = EmbeddingCache(tmp_path)
    assert len(cache) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vectors, encoded = cache.encode(["a", "c"], lambda texts: np.ones((len(texts), 8), np.float32))
    assert vectors.shape == (2, 8) and encoded == 1


def test_damaged_embeddings_file_is_a_user_error(capsys, prepared, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    fill_cache(cache, prepared.catalog.texts + [query.text for query in prepared.queries])
    monkeypatch.setenv("UNISR_CACHE_DIR", str(tmp_path / "unused"))
    result = embed_dataset(prepared.root, EmbedConfig(cache_dir=str(cache), progress=False))
    (result.directory / "items.npy").write_bytes(b"")
    with pytest.raises(InputFileError, match=r"items\.npy: empty or truncated \(run `unisr embed"):
        load_embeddings(prepared.root)
