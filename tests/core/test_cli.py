"""`hami vendors`, `--version` and `--help`, run as a user runs them."""

import json
import os
import subprocess
import sys

import pytest

from hami_core import __version__
from hami_core.cli import build_parser, main


def run_hami(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hami_core.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


def test_vendors_lists_the_example_accelerator() -> None:
    result = run_hami("vendors", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["key"]: row for row in json.loads(result.stdout)}
    example = rows["example"]
    assert example["distribution"] == "hami-example-accelerator"
    assert example["status"] == "loaded"
    assert "example.com/xpu" in example["resources"]
    assert example["mounting"] == "runtime"


def test_disabled_vendor_is_not_listed() -> None:
    result = run_hami("vendors", "--json", env={"HAMI_DISABLED_VENDORS": "example"})
    assert result.returncode == 0, result.stderr
    assert "example" not in {row["key"] for row in json.loads(result.stdout)}


def test_vendors_table_is_human_readable(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vendors"]) == 0
    out = capsys.readouterr().out
    assert "example" in out and "hami-example-accelerator" in out


def test_version() -> None:
    result = run_hami("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"hami {__version__}"


def test_every_command_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    choices = getattr(sub, "choices", {})
    assert "vendors" in choices
    for name, command in choices.items():
        assert command.description, f"hami {name} has no description"
        text = command.format_help()
        assert f"hami {name}" in text


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: hami" in capsys.readouterr().out
