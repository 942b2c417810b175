"""The package's floors: every import of a unisr module points to the same floor or a lower one, and inference reads no training code."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "unisr"
FLOORS = {  # lowest first
    "config": 0,
    "defaults": 0,
    "errors": 0,
    "io": 0,
    "training": 0,
    "validate": 0,
    "data": 1,
    "embeddings": 2,
    "tokenizer": 3,
    "decoder": 4,
    "evaluation": 5,
    "experiments": 6,
    "api": 7,
    "cli": 7,
    "serve": 7,
    "__init__": 7,
    "__main__": 7,
}
TRAINING_MODULES = {"unisr.training", "unisr.decoder.train", "unisr.decoder.module", "unisr.decoder.calibration"}
TRAINING_MODULES |= {"unisr.tokenizer.train", "unisr.tokenizer.module"}
INFERENCE_MODULES = [f"unisr.decoder.{name}" for name in ("artifact", "beam", "generate", "guidance", "inputs", "model", "retriever")]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 2 else parts)


def is_module(name: str) -> bool:
    """Whether a dotted name is a module file of the package (``from unisr.x import y`` may import module y)."""
    return PACKAGE.parent.joinpath(*name.split(".")).with_suffix(".py").is_file()


def unisr_imports(path: Path) -> set[str]:
    """Every ``unisr.*`` module imported anywhere in the file (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("unisr.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("unisr") and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names if is_module(f"{node.module}.{alias.name}")}
    return found


def floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS[parts[1] if len(parts) > 1 else "__init__"]


def test_every_import_points_to_the_same_floor_or_lower():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = module_name(path)
        for target in unisr_imports(path):
            if target != "unisr" and floor(target) > floor(source):
                upward.append(f"{source} → {target}")
    assert not upward, "imports pointing up a floor:\n" + "\n".join(upward)


def test_inference_modules_import_no_training_module():
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    for name in INFERENCE_MODULES:
        assert not unisr_imports(modules[name]) & TRAINING_MODULES, name
