"""`hami scheduler` and `hami scheduler print-config` through their argument parser."""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from extender_kit import eventually

from hami_core.cli import build_parser
from hami_core.errors import ConfigError
from hami_core.plugins import load_vendors
from hami_core.scheduler import SchedulerSettings
from hami_core.scheduler.command import parse_bind_address, parse_duration, settings_from
from hami_core.testing import FakeApiServer

ROOT = Path(__file__).resolve().parents[2]


def hami(argv: list[str]) -> argparse.Namespace:
    """Parse `hami <argv>` as the `hami` command does."""
    return build_parser().parse_args(argv)


def print_config(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    args = hami(["scheduler", *argv])
    assert args.func(args) == 0
    loaded: dict[str, Any] = yaml.safe_load(capsys.readouterr().out)
    return loaded


def test_print_config_generates_managed_resources_from_the_vendors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAMI_VENDORS", "example")
    config = print_config(capsys, ["print-config", "--scheduler-name", "gpu-sched"])
    assert config["kind"] == "KubeSchedulerConfiguration"
    assert config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert config["profiles"] == [{"schedulerName": "gpu-sched"}]
    [extender] = config["extenders"]
    spec = load_vendors(environ={"HAMI_VENDORS": "example"}).spec("example")
    assert extender["managedResources"] == [
        {"name": n, "ignoredByScheduler": n in spec.ignored_by_scheduler}
        for n in spec.resource_names()
    ]
    assert extender["urlPrefix"] == "http://127.0.0.1:8080"
    assert extender["enableHTTPS"] is False
    assert (extender["filterVerb"], extender["bindVerb"]) == ("filter", "bind")
    assert extender["nodeCacheCapable"] is True
    assert extender["httpTimeout"] == "30s"


def test_print_config_follows_the_service_flags(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAMI_VENDORS", "example")
    argv = ["--bind-address", "0.0.0.0:9443", "--cert-file", "c.pem", "--key-file", "k.pem"]
    config = print_config(capsys, [*argv, "--scheduler-name", "s1", "print-config"])
    [extender] = config["extenders"]
    assert extender["urlPrefix"] == "https://127.0.0.1:9443"
    assert extender["tlsConfig"] == {"insecure": True}
    assert config["profiles"] == [{"schedulerName": "s1"}]
    assert config["leaderElection"]["resourceName"] == "s1"


def test_the_deploy_file_is_what_print_config_generates(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HAMI_VENDORS", raising=False)
    monkeypatch.setenv("HAMI_DISABLED_VENDORS", "example")
    generated = print_config(capsys, ["print-config", "--url-prefix", "https://127.0.0.1:443"])
    shipped = yaml.safe_load((ROOT / "deploy" / "scheduler-config.yaml").read_text())
    assert shipped == generated, (
        "regenerate: HAMI_DISABLED_VENDORS=example hami scheduler print-config "
        "--url-prefix https://127.0.0.1:443 (keep the header comment)"
    )


def test_flag_values_are_checked() -> None:
    assert parse_duration("5m") == 300.0
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration("28") == 28.0
    for bad in ("", "5x", "m5", "-3s", "0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_duration(bad)
    assert parse_bind_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_bind_address("[::1]:443") == ("::1", 443)
    assert parse_bind_address(":443") == ("0.0.0.0", 443)
    for bad in ("8080", "host:", "host:99999"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_bind_address(bad)
    args = hami(["scheduler", "--lease-duration", "5s", "--renew-deadline", "10s"])
    assert args.func(args) == 2  # a renew deadline longer than the lease is refused
    args = hami(["scheduler", "--cert-file", "only.pem"])
    assert args.func(args) == 2


def test_the_bind_cache_wait_flag_reaches_the_settings() -> None:
    assert settings_from(hami(["scheduler"])).bind_cache_wait == 1.0
    assert settings_from(hami(["scheduler", "--bind-cache-wait", "250ms"])).bind_cache_wait == 0.25
    assert settings_from(hami(["scheduler", "--bind-cache-wait", "0"])).bind_cache_wait == 0.0
    with pytest.raises(SystemExit):
        hami(["scheduler", "--bind-cache-wait", "-1s"])
    with pytest.raises(ConfigError, match="bind_cache_wait: must be >= 0"):
        SchedulerSettings(bind_cache_wait=-0.5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_service_runs_until_sigterm_and_hands_its_lease_back(
    tmp_path: Path, api: FakeApiServer
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": api.url}}],
                "users": [{"name": "me", "user": {"token": "t"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "me"}}],
                "current-context": "fake",
            }
        )
    )
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hami_core.cli",
            "scheduler",
            "--kubeconfig",
            str(kubeconfig),
            "--bind-address",
            f"127.0.0.1:{port}",
            "--lease-namespace",
            "default",
            "--identity",
            "the-one",
        ],
        cwd=ROOT,
        env={"HAMI_VENDORS": "example", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        eventually(ready, timeout=20, what="the scheduler to be ready")
        eventually(
            lambda: (
                api.state.get_lease("default", "hami-scheduler-extender")["spec"]["holderIdentity"]
                == "the-one"
            ),
            what="the lease",
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lease = api.state.get_lease("default", "hami-scheduler-extender")["spec"]
    assert lease["holderIdentity"] == ""
