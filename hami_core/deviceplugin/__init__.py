"""The node side of hami: kubelet device plugins, their allocator and the node agent.

- `api/`: the kubelet's gRPC APIs (`.proto` + committed generated modules).
- `rpc`: typed gRPC handlers and clients for those APIs.
- `devices`: how cards are offered to the kubelet (replica IDs, health, NUMA, preferences).
- `attribution`: which pending pod an `Allocate` belongs to, or a refusal to guess.
- `allocate`: `Allocator`, the `Allocate` logic over a `Cluster` (no gRPC; usable by simulators).
- `board`, `server`, `manager`: the device list, one plugin's server and registration, all of
  the node's plugins kept registered across kubelet restarts.
- `agent`: `NodeAgent`, discover → split → annotate → register.
- `node`: `DevicePluginNode`, everything above wired together; `command`: the CLI commands.
- `fakekubelet`: `FakeKubelet`, the kubelet's side, for tests and manual checks.

Only this package imports `grpc`; importing it does not.
"""
