"""Every hook of the vendor contract is documented, and some test calls it."""

import inspect
import re
from pathlib import Path

import pytest

from hami_core import hookspecs

ROOT = Path(__file__).resolve().parents[2]
TEST_SOURCES = [
    *ROOT.glob("tests/**/*.py"),
    *ROOT.glob("vendors/*/tests/**/*.py"),
    *ROOT.glob("examples/*/tests/**/*.py"),
    ROOT / "hami_core" / "testing" / "contract.py",
]


def declared_hooks() -> list[str]:
    return sorted(
        n for n, f in inspect.getmembers(hookspecs) if n.startswith("hami_") and callable(f)
    )


def test_hook_names_list_every_declared_hook() -> None:
    assert sorted(hookspecs.HOOK_NAMES) == declared_hooks()


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_hook_is_documented(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "Called by" in doc, f"{name}: say who calls it"
    assert "Returns" in doc, f"{name}: say what it returns"


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_single_vendor_hooks_are_firstresult_and_say_none_is_not_mine(name: str) -> None:
    opts = getattr(hookspecs, name).hami_spec
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    if name == "hami_vendor":
        assert not opts["firstresult"]
        return
    assert opts["firstresult"], f"{name} concerns one vendor: it must be firstresult"
    assert "None" in doc


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_some_test_calls_the_hook(name: str) -> None:
    call = re.compile(rf"\.{name}\(|\b{name}\(")
    callers = [p for p in TEST_SOURCES if call.search(p.read_text(encoding="utf-8"))]
    assert callers, f"no test calls {name}"
