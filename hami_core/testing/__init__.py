"""The shipped test kit: fakes of hami's peers that speak their real protocols.

`FakeApiServer` is a stateful Kubernetes apiserver over HTTP, backed by `MemoryCluster`.
"""

from __future__ import annotations

from hami_core.testing.fake_apiserver import FakeApiServer, Faults, RecordedRequest
from hami_core.testing.fake_kubelet import FakeKubelet

__all__ = ["FakeApiServer", "FakeKubelet", "Faults", "RecordedRequest"]
