"""`hami simulate` as a user runs it: the table, `--json`, `--report`, `--seed`, and bad input."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from sim_kit import CLUSTER, SNAPSHOT, WORKLOAD, Cli

POD_KEYS = {"namespace", "name", "node", "devices", "reason", "containers"}
SHARE_KEYS = {"uuid", "type", "usedmem", "usedcores"}
CONTAINER_KEYS = {"name", "env", "mounts", "devices"}
CARD_KEYS = {"id", "type", "used", "count", "usedmem", "totalmem", "usedcores", "totalcores"}


def test_json_has_the_documented_shape(cli: Cli) -> None:
    code, out, err = cli("simulate", CLUSTER, WORKLOAD, "--json")
    assert code == 0, err
    assert err == ""
    data = json.loads(out)
    assert set(data) == {"pods", "nodes"}
    assert len(data["pods"]) == 31
    for pod in data["pods"]:
        assert set(pod) == POD_KEYS
        assert (pod["node"] is None) == (
            pod["reason"] is not None and "Allocate" not in pod["reason"]
        )
        for containers in pod["devices"].values():
            for devices in containers:
                assert all(set(d) == SHARE_KEYS for d in devices)
        for c in pod["containers"]:
            assert set(c) == CONTAINER_KEYS
            assert all(isinstance(v, str) for v in c["env"].values())
            assert all({"container_path", "host_path", "read_only"} == set(m) for m in c["mounts"])
            assert all(
                {"container_path", "host_path", "permissions"} == set(d) for d in c["devices"]
            )
    by_name = {p["name"]: p for p in data["pods"]}
    train = by_name["train-a100"]
    assert [len(c) for c in train["devices"]["NVIDIA"]] == [2]
    assert train["containers"][0]["env"]["CUDA_DEVICE_SM_LIMIT"] == "50"
    assert by_name["too-big"]["node"] is None
    assert "4/4 CardInsufficientMemory" in by_name["too-big"]["reason"]
    assert [n["name"] for n in data["nodes"]] == sorted(n["name"] for n in data["nodes"])
    for node in data["nodes"]:
        assert all(set(card) == CARD_KEYS for card in node["devices"])
    mx = next(n for n in data["nodes"] if n["name"] == "mx-c500-1")
    assert sum(card["used"] for card in mx["devices"]) == 2


def test_the_table_shows_pods_reasons_cards_and_a_summary(cli: Cli) -> None:
    code, out, err = cli("simulate", CLUSTER, WORKLOAD)
    assert code == 0, err
    assert err == "", "no progress bar when stderr is not a terminal"
    for text in (
        "Pods",
        "Cards",
        "Why these pods did not run",
        "ml/too-big",
        "gpu-a100-1",
        "Mthreads",
        "31 pods: 28 scheduled, 1 unschedulable, 1 denied, 1 skipped",
    ):
        assert text in out, text
    assert "4/4 CardInsufficientMemory" in out


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.rows_in_tbody: list[int] = []
        self.title = ""
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        self._in.append(tag)
        if tag == "tbody":
            self.rows_in_tbody.append(0)
        if tag == "tr" and "tbody" in self._in:
            self.rows_in_tbody[-1] += 1

    def handle_endtag(self, tag: str) -> None:
        while self._in and self._in.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "title":
            self.title += data


def test_the_html_report_is_self_contained_with_tables_and_a_chart(
    cli: Cli, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    code, out, err = cli("simulate", CLUSTER, WORKLOAD, "--report", str(report))
    assert code == 0, err
    assert f"report written to {report}" in out
    page = _Page()
    page.feed(report.read_text(encoding="utf-8"))
    page.close()
    assert page.title.startswith("hami simulate")
    assert page.tags.count("table") == 3  # fill by card type, pods, cards
    # the pods table lists every pod; the cards table every card
    assert 31 in page.rows_in_tbody
    assert (4 + 4 + 4 + 8 + 4 + 4 + 4 + 4 + 4) in page.rows_in_tbody
    # one chart per node, with a memory and a cores bar (plus their tracks) per card
    figures = page.tags.count("figure")
    assert figures == 9
    assert page.tags.count("svg") >= figures
    assert page.tags.count("rect") >= 4 * 40
    assert page.tags.count("title") > 40  # a tooltip per card
    # nothing is fetched from elsewhere
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
    assert not [v for k, v in page.attrs if k in ("src", "href") and v]


def test_a_snapshot_simulates_from_the_command_line(cli: Cli) -> None:
    code, out, err = cli("simulate", SNAPSHOT, WORKLOAD, "--json")
    assert code == 0, err
    data = json.loads(out)
    by_name = {p["name"]: p for p in data["pods"]}
    assert by_name["infer-0"]["node"] in ("gpu-node-1", "gpu-node-2")
    assert by_name["mx-pair"]["node"] is None
    assert "NodeInsufficientDevice" in by_name["mx-pair"]["reason"]


def _placement(out: str) -> tuple[Any, ...]:
    data = json.loads(out)
    return (
        [(p["name"], p["node"], p["devices"]) for p in data["pods"]],
        data["nodes"],
    )


def test_the_seed_makes_runs_repeat(cli: Cli) -> None:
    runs = [
        cli("simulate", CLUSTER, WORKLOAD, "--json", "--seed", seed) for seed in ("3", "3", "4")
    ]
    assert all(code == 0 for code, _, _ in runs)
    first, again, other = (_placement(out) for _, out, _ in runs)
    assert first == again
    assert first[1] != other[1], "another seed names the generated cards differently"


def test_an_empty_workload_shows_the_inventory(cli: Cli) -> None:
    code, out, _ = cli("simulate", SNAPSHOT, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["pods"] == []
    used = {c["id"]: c["usedmem"] for n in data["nodes"] for c in n["devices"]}
    assert used["GPU-0d6a4b5c-94b1-2e8e-7f3a-5c1d2e9f0a11"] == 20480


def _bad_inventory(tmp_path: Path) -> str:
    path = tmp_path / "cluster.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "nodes": [
                    {"name": "gpu-1", "devices": [{"vendor": "nvidia", "model": "A", "memory": -5}]}
                ]
            }
        )
    )
    return str(path)


def _bad_workload(tmp_path: Path) -> str:
    path = tmp_path / "workload.yaml"
    path.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
        "  replicas: two\n  template: {spec: {containers: [{name: c}]}}\n"
    )
    return str(path)


def _bad_config(tmp_path: Path) -> str:
    path = tmp_path / "device-config.yaml"
    path.write_text("- nvidia\n")
    return str(path)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "inventory",
            ['cluster.yaml: node "gpu-1" (nodes[0]): devices[0].memory: ', "greater than 0"],
        ),
        (
            "workload",
            [
                'workload.yaml: Deployment "web" (document 1): spec.replicas: ',
                "whole number >= 0, got 'two'",
            ],
        ),
        ("config", ["device-config.yaml: the device config must be a mapping"]),
        ("missing", ["nowhere.yaml: no such file"]),
        ("policy", ["--gpu-policy: ", "sideways"]),
    ],
)
def test_bad_input_exits_2_naming_what_is_wrong(
    cli: Cli, tmp_path: Path, case: str, expected: list[str]
) -> None:
    args = {
        "inventory": [_bad_inventory(tmp_path), WORKLOAD],
        "workload": [CLUSTER, _bad_workload(tmp_path)],
        "config": [CLUSTER, "--config", _bad_config(tmp_path)],
        "missing": [CLUSTER, str(tmp_path / "nowhere.yaml")],
        "policy": [CLUSTER, "--gpu-policy", "sideways"],
    }[case]
    code, out, err = cli("simulate", *args)
    assert code == 2
    assert out == ""
    assert err.startswith("hami simulate: ")
    for text in expected:
        assert text in err
    assert "Traceback" not in err


def test_a_terminal_sees_a_progress_bar_on_stderr(tmp_path: Path) -> None:
    replicas = tmp_path / "many.yaml"
    replicas.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "many"},
                "spec": {
                    "replicas": 40,
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "c",
                                    "resources": {
                                        "limits": {"nvidia.com/gpu": 1, "nvidia.com/gpumem": 100}
                                    },
                                }
                            ]
                        }
                    },
                },
            }
        )
    )
    parent, child = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hami_core.cli", "simulate", CLUSTER, str(replicas)],
            stdout=subprocess.PIPE,
            stderr=child,
            timeout=120,
            env={**os.environ, "COLUMNS": "100"},
        )
        os.close(child)
        child = -1
        seen = b""
        while True:
            try:
                chunk = os.read(parent, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if child != -1:
            os.close(child)
        os.close(parent)
    assert done.returncode == 0
    assert b"simulating" in seen
    assert b"40 pods: 40 scheduled" in done.stdout
