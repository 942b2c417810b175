"""A built wheel carries tasks/ and configs/: `unisr data prepare synthetic` works after a non-editable install."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from unisr import config
from unisr.data import tasks

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("unisr", "tasks", "configs", "pyproject.toml", "setup.py", "MANIFEST.in", "README.md")


def test_checkout_folders_are_found_without_a_packaged_copy(monkeypatch):
    monkeypatch.delenv(config.CONFIGS_DIR_ENV, raising=False)
    monkeypatch.delenv(tasks.TASKS_DIR_ENV, raising=False)
    if Path(config.__file__).resolve().parents[1] != ROOT:
        pytest.skip("unisr is not imported from this checkout (a non-editable install)")
    packaged = ROOT / "unisr" / config.RESOURCES_PACKAGE_DIR
    if packaged.exists():
        pytest.skip(f"{packaged} exists in this checkout (left by a build?)")
    assert config.configs_dir() == ROOT / "configs" and tasks.tasks_dir() == ROOT / "tasks"
    assert "synthetic" in tasks.available_tasks()


def test_environment_overrides_win(monkeypatch, tmp_path):
    (tmp_path / "mine.yaml").write_text("loader: synthetic\n")
    monkeypatch.setenv(config.CONFIGS_DIR_ENV, str(tmp_path))
    monkeypatch.setenv(tasks.TASKS_DIR_ENV, str(tmp_path))
    assert config.configs_dir() == tmp_path and tasks.available_tasks() == ["mine"]


def _wheel_build_unavailable() -> str | None:
    """Why a wheel cannot be built offline here (no build isolation), or None."""
    if importlib.util.find_spec("pip") is None:
        return "pip is not installed"
    if importlib.util.find_spec("setuptools") is None:
        return "setuptools is not installed (pip wheel --no-build-isolation needs it)"
    setuptools_version = tuple(int(part) for part in importlib.metadata.version("setuptools").split(".")[:2] if part.isdigit())
    if setuptools_version < (70, 1) and importlib.util.find_spec("wheel") is None:
        return "setuptools < 70.1 needs the `wheel` package to build wheels, and it is not installed"
    return None


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.mark.slow
def test_installed_wheel_prepares_the_synthetic_task(tmp_path):
    reason = _wheel_build_unavailable()
    if reason:
        pytest.skip(f"cannot build a wheel here: {reason}")
    env = {key: value for key, value in os.environ.items() if not key.startswith("UNISR_") and key not in ("PYTHONPATH", "PYTHONHOME")}
    source = tmp_path / "source"  # a copy, so the build leaves no build/ or *.egg-info in the checkout
    for name in SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(origin, source / name)
    shutil.rmtree(source / "unisr" / config.RESOURCES_PACKAGE_DIR, ignore_errors=True)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(source),
            "-w",
            str(tmp_path / "dist"),
        ],
        tmp_path,
        env,
    )
    (wheel,) = (tmp_path / "dist").glob("unisr-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    # the venv sees this interpreter's pip (and torch, ...) through --system-site-packages; it installs into the venv
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--force-reinstall", str(wheel)], tmp_path, env)

    empty = tmp_path / "empty"
    empty.mkdir()
    where = _run(
        [
            str(python),
            "-c",
            "import unisr, unisr.config as c, unisr.data.tasks as t; print(unisr.__file__); print(c.configs_dir()); print(t.tasks_dir())",
        ],
        empty,
        env,
    ).stdout.split()
    installed = venv.resolve()
    assert all(Path(path).resolve().is_relative_to(installed) for path in where), f"not the wheel's copy: {where}"
    assert (Path(where[1]) / "tokenizer.yaml").is_file() and (Path(where[2]) / "synthetic.yaml").is_file()

    unisr = str(venv / "bin" / "unisr")
    listed = _run([unisr, "data", "tasks"], empty, env).stdout.split()
    assert {"synthetic", "beauty", "scientific", "ml-100k"} <= set(listed)
    prepared = _run([unisr, "data", "prepare", "synthetic", "--out", "X"], empty, env)
    assert "prepared synthetic" in prepared.stdout
    assert (empty / "X" / "manifest.json").is_file()
