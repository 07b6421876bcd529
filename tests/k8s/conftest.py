"""Fixtures for the Kubernetes boundary: one cluster under test, two implementations."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hami_core.k8s.kube import KubeCluster
from hami_core.testing import FakeApiServer


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    """A running fake apiserver."""
    with FakeApiServer() as fake:
        yield fake


@pytest.fixture
def kube(server: FakeApiServer) -> Iterator[KubeCluster]:
    """The real-client adapter pointed at the fake apiserver, with short timeouts for tests."""
    cluster = server.kube_cluster(request_timeout=5.0, watch_timeout_seconds=30)
    yield cluster
    cluster.close()
