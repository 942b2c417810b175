from __future__ import annotations

import json
import subprocess
import sys

import pytest

from unisr.cli.main import main


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_prepare_stats_and_tasks(capsys, tmp_path):
    code, out, _ = run(capsys, "data", "prepare", "synthetic", "--out", str(tmp_path / "d"))
    assert code == 0 and "prepared synthetic" in out
    code, out, _ = run(capsys, "data", "stats", str(tmp_path / "d"))
    assert code == 0 and "users" in out and "sequence length" in out and "queries" in out
    code, out, _ = run(capsys, "data", "stats", str(tmp_path / "d"), "--json")
    assert json.loads(out)["counts"]["users"] > 0
    code, out, _ = run(capsys, "data", "tasks")
    assert {"synthetic", "beauty", "scientific", "ml-100k"} <= set(out.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "prepare", "nope"], "unknown task 'nope'"),
        (["data", "stats", "/no/such/dir"], "not a prepared dataset"),
        (["embed", "/no/such/dir"], "not a prepared dataset"),
    ],
)
def test_user_errors_are_one_line_with_exit_code_2(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_existing_output_is_refused_and_kept(capsys, tmp_path):
    target = tmp_path / "d"
    assert run(capsys, "data", "prepare", "synthetic", "--out", str(target))[0] == 0
    before = (target / "manifest.json").read_text()
    code, _, err = run(capsys, "data", "prepare", "synthetic", "--out", str(target), "--cold-start")
    assert code == 2 and "already holds a prepared dataset" in err
    assert (target / "manifest.json").read_text() == before


def test_console_script_has_no_traceback_on_bad_input(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("loader: lcrec\nfiles: {interactions: x.json, items: y.json}\n")
    result = subprocess.run(
        [sys.executable, "-m", "unisr", "data", "prepare", str(bad), "--data-root", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "x.json" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run([sys.executable, "-m", "unisr", "data", "prepare", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "--cold-start" in result.stdout
