"""Build hook: a wheel carries the repository's tasks/ and configs/ as unisr/_resources/{tasks,configs}.

The YAML files live once in git, at the repository root. An editable install reads them from the checkout;
an installed wheel reads the copies this hook puts in the build (see unisr.config.resource_dir). Everything
else about the package is declared in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RESOURCE_FOLDERS = ("tasks", "configs")
PACKAGE_RESOURCES = Path("unisr", "_resources")


class BuildPyWithResources(build_py):
    """``build_py`` that also copies tasks/*.yaml and configs/*.yaml into the built package (not in editable mode)."""

    def _resources(self) -> list[tuple[Path, Path]]:
        if getattr(self, "editable_mode", False):
            return []
        pairs = []
        for folder in RESOURCE_FOLDERS:
            files = sorted((ROOT / folder).glob("*.yaml"))
            if not files:
                raise SystemExit(f"setup.py: no YAML files under {ROOT / folder}; a wheel without them cannot prepare any task")
            pairs += [(source, Path(self.build_lib) / PACKAGE_RESOURCES / folder / source.name) for source in files]
        return pairs

    def run(self):
        super().run()
        for source, target in self._resources():
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [str(target) for _, target in self._resources()]


setup(cmdclass={"build_py": BuildPyWithResources})
