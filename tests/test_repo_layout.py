"""Every vendor distribution follows the same skeleton, in lockstep with hami-core."""

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
VENDORS = sorted(p for p in (ROOT / "vendors").glob("hami-*") if p.is_dir())
PACKAGES = [*VENDORS, ROOT / "examples" / "hami-example-accelerator"]
HARDWARE_MODULES = {"subprocess", "ctypes", "pynvml", "pymtml", "pymxsml", "shutil"}


def short_name(path: Path) -> str:
    name = path.name.removeprefix("hami-")
    return "example" if name == "example-accelerator" else name


def test_there_are_vendor_distributions() -> None:
    assert VENDORS, "vendors/ holds no hami-<vendor> distribution"


@pytest.mark.parametrize("dist", PACKAGES, ids=lambda p: p.name)
def test_distribution_skeleton(dist: Path) -> None:
    v = short_name(dist)
    module = f"hami_{v}"
    project = tomllib.loads((dist / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == dist.name
    assert project["version"] == CORE["version"], "versions move in lockstep with hami-core"
    entry = project["entry-points"]["hami.vendors"]
    assert entry == {v: f"{module}.plugin"}
    core_dep = [d for d in project["dependencies"] if re.match(r"^hami-core\b", d)]
    assert core_dep, "must depend on hami-core"
    assert f">={CORE['version']}" in core_dep[0]
    for required in (
        "README.md",
        f"{module}/__init__.py",
        f"{module}/py.typed",
        f"{module}/plugin.py",
        "tests/test_contract.py",
    ):
        assert (dist / required).is_file(), f"{dist.name}: missing {required}"
    contract = (dist / "tests" / "test_contract.py").read_text(encoding="utf-8")
    assert "VendorContract" in contract


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("dist", PACKAGES, ids=lambda p: p.name)
def test_only_the_binding_touches_hardware_and_vendors_stay_apart(dist: Path) -> None:
    own = f"hami_{short_name(dist)}"
    others = {f"hami_{short_name(p)}" for p in PACKAGES} - {own}
    for source in (dist / own).rglob("*.py"):
        found = imports_of(source)
        assert not found & others, f"{source}: vendors never import each other"
        if source.name != "binding.py":
            assert not found & HARDWARE_MODULES, (
                f"{source}: only binding.py may use {sorted(found & HARDWARE_MODULES)}"
            )


def test_core_never_imports_a_vendor() -> None:
    vendor_modules = {f"hami_{short_name(p)}" for p in PACKAGES}
    for source in (ROOT / "hami_core").rglob("*.py"):
        assert not imports_of(source) & vendor_modules, source


def test_lock_files_and_build_outputs_are_ignored() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    for entry in ("uv.lock", ".venv/", "__pycache__/", "*.egg-info/", "build/", "dist/"):
        assert entry in ignored


def test_the_example_vendor_stays_small() -> None:
    package = ROOT / "examples" / "hami-example-accelerator" / "hami_example"
    lines = [
        line
        for source in package.glob("*.py")
        for line in source.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(lines) <= 60, "a new accelerator should take a few dozen lines"
