"""HTTPS with a certificate that is renewed on disk while the server runs."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from extender_kit import fast_settings

from hami_core.errors import ConfigError
from hami_core.k8s.memory import MemoryCluster
from hami_core.plugins import VendorRegistry
from hami_core.scheduler import ReloadingTLS, SchedulerService


def make_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """A throwaway self-signed EC certificate for `name`, written as `cert.pem` / `key.pem`."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={name}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def served_certificate(url: str) -> bytes:
    """The DER certificate a TLS client is shown at `url`."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=None) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_a_renewed_certificate_is_served_without_a_restart(
    tmp_path: Path, cluster: MemoryCluster, registry: VendorRegistry
) -> None:
    old_cert, old_key = make_pair(tmp_path, "old")
    new_cert, new_key = make_pair(tmp_path, "new")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(old_cert.read_bytes())
    key.write_bytes(old_key.read_bytes())

    service = SchedulerService(cluster, registry, None, fast_settings())
    with service.serve_in_thread(certfile=cert, keyfile=key) as server:
        assert server.url.startswith("https://")
        assert service.tls is not None
        service.tls.check_interval = 0.0
        first = served_certificate(server.url)
        with httpx.Client(base_url=server.url, verify=False) as http:
            assert http.get("/healthz").text == "ok"

        # cert-manager writes the renewed pair (a new key first: a mismatch is kept out)
        key.write_bytes(new_key.read_bytes())
        assert served_certificate(server.url) == first
        cert.write_bytes(new_cert.read_bytes())
        os.utime(cert)
        second = served_certificate(server.url)
        assert second != first
        assert second == ssl.PEM_cert_to_DER_cert(new_cert.read_text())
        assert service.tls.reloads == 1


def test_unreadable_certificates_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load certificate"):
        ReloadingTLS(tmp_path / "missing.crt", tmp_path / "missing.key")
