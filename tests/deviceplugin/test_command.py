"""`hami discover` and `hami device-plugin`, with a vendor installed through an entry point."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dp_kit import NODE, eventually, node_annotations, node_obj

from hami_core.cli import main
from hami_core.testing import FakeApiServer
from hami_core.testing.fake_kubelet import FakeKubelet

KIT = Path(__file__).resolve().parent
ROOT = KIT.parents[1]


def install_test_vendor(where: Path) -> str:
    """Write a distribution declaring the test vendor under `hami.vendors` into `where` (a
    sys.path entry); the vendor's cards come from `$TESTGPU_CARDS`. Returns its module name."""
    module = f"dp_vendor_{uuid.uuid4().hex[:8]}"
    (where / f"{module}.py").write_text(
        "from dp_kit import TestGpu\n\nplugin = TestGpu.from_env()\n", encoding="utf-8"
    )
    dist = where / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        f"[hami.vendors]\ntestgpu = {module}:plugin\n", encoding="utf-8"
    )
    return module


def hami(*argv: str) -> int:
    """Run the `hami` command line in this process."""
    return main(list(argv))


@pytest.fixture
def vendor_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    install_test_vendor(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    monkeypatch.setenv("HAMI_VENDORS", "testgpu")
    yield


def test_discover_prints_the_cards(
    vendor_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TESTGPU_CARDS", "2")
    assert hami("discover") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "testgpu: 2 device(s)"
    assert lines[1].split() == [
        "[0]", "TESTGPU-0000", "TESTGPU-T0", "16384", "MiB", "cores", "100", "numa", "0",
        "healthy", "split", "4",
    ]  # fmt: skip


def test_discover_json_with_a_config(
    vendor_env: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TESTGPU_CARDS", "1")
    config = tmp_path / "device-config.yaml"
    config.write_text("testgpu:\n  deviceSplitCount: 6\n  deviceMemoryScaling: 2\n")
    assert hami("discover", "--vendor", "testgpu", "--json", "--config", str(config)) == 0
    out = json.loads(capsys.readouterr().out)
    [entry] = out["vendors"]
    assert (entry["vendor"], entry["status"], entry["resources"]) == (
        "testgpu",
        "ok",
        ["example.com/testgpu"],
    )
    assert entry["devices"][0]["split"] == 6
    assert entry["devices"][0]["registered_memory_mib"] == 32768


def test_discover_says_why_a_vendor_is_unavailable(
    vendor_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TESTGPU_CARDS", "unavailable:libtestgpu.so.1 not found")
    assert hami("discover") == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "testgpu: unavailable: libtestgpu.so.1 not found"
    assert "Traceback" not in captured.err


def test_discover_rejects_an_unknown_vendor(
    vendor_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hami("discover", "--vendor", "nosuch") == 2
    assert "vendor 'nosuch' is not installed (installed: testgpu)" in capsys.readouterr().err


def test_discover_reports_a_bad_config_file(
    vendor_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hami("discover", "--config", str(tmp_path / "missing.yaml")) == 2
    assert "cannot read device config" in capsys.readouterr().err


def test_discover_over_every_installed_vendor_never_shows_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HAMI_VENDORS", raising=False)
    code = hami("discover")
    captured = capsys.readouterr()
    assert code in (0, 1)
    assert "Traceback" not in captured.out + captured.err
    for line in captured.out.splitlines():
        assert line.startswith("  [") or ": " in line


def test_device_plugin_needs_a_node_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    assert hami("device-plugin") == 2
    assert "--node-name or $NODE_NAME is required" in capsys.readouterr().err


def test_device_plugin_runs_registers_and_stops_on_sigterm(tmp_path: Path) -> None:
    install_test_vendor(tmp_path)
    with FakeApiServer() as server, FakeKubelet() as kubelet:
        server.state.add_node(node_obj(NODE))
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": server.url}}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                    "contexts": [{"name": "c", "context": {"cluster": "fake", "user": "u"}}],
                    "current-context": "c",
                }
            )
        )
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(tmp_path), str(KIT), str(ROOT)]),
            "HAMI_VENDORS": "testgpu",
            "TESTGPU_CARDS": "3",
            "NODE_NAME": NODE,
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "hami_core.cli", "device-plugin",
                "--plugin-dir", str(kubelet.plugin_dir),
                "--kubeconfig", str(kubeconfig),
                "--interval", "1", "--health-interval", "0.2",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        try:
            kubelet.wait_registered("example.com/testgpu", timeout=20)
            assert len(kubelet.wait_devices("example.com/testgpu")) == 12
            eventually(
                lambda: "hami.io/node-testgpu-register" in node_annotations(server.state),
                5,
                "register annotation",
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, output
        assert "Traceback" not in output
        assert not (kubelet.plugin_dir / "hami-testgpu-example.com_testgpu.sock").exists()
