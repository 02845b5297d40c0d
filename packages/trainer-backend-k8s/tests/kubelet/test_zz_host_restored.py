"""Runs last: node-down.sh stops the real node and must leave the host as node-up.sh found it.

The fixture recorded scripts/k8s/node-host-state.sh before starting anything. While the node is up the
state differs (bridge, FORWARD rule, processes, mounts, cgroups), so the comparison can fail; after
node-down.sh it must be equal again. (The session fixture's own node-down.sh then has nothing to do.)
"""

from __future__ import annotations

from typing import Any


def test_node_down_restores_every_host_change(
    plane: dict[str, Any], plane_env: dict[str, str], node_scripts: Any, host_state_now: Any
) -> None:
    before = plane["host_before"]
    during = host_state_now()
    bridge = "link.kftbr0=present"
    assert bridge in during and bridge not in before, during
    assert "process=kubelet" in during and "process=containerd" in during, during
    assert any(line.startswith("iptables.filter=") for line in during), during
    assert any(line.startswith("mount=") for line in during), during
    down = node_scripts("node-down.sh", plane_env, timeout=300)
    assert down.returncode == 0, down.stderr[-3000:]
    after = host_state_now()
    assert after == before, {"left": sorted(set(after) - set(before)), "lost": sorted(set(before) - set(after))}
