"""Runs last: node-down.sh stops the real node and must leave the host as node-up.sh found it.

The fixture recorded scripts/k8s/node-host-state.sh before starting anything. While the node is up the
state differs (bridge, FORWARD rule, processes, mounts, cgroups), so the comparison can fail; after
node-down.sh it must be equal again. (The session fixture's own node-down.sh then has nothing to do.)
"""

from __future__ import annotations

import json
from pathlib import Path
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


def test_a_killed_sessions_node_is_cleaned_by_the_next_node_up(
    plane: dict[str, Any], plane_env: dict[str, str], node_scripts: Any, host_state_now: Any, tmp_path: Path
) -> None:
    """A session killed before node-down.sh leaves its bridge, containerd and kubelet running. The next
    session (another run dir) finds the record node-up.sh keeps outside the run dir, cleans that node with
    node-down.sh and starts its own; then everything is restored."""
    before = plane["host_before"]
    up = node_scripts("node-up.sh", plane_env, timeout=600)
    assert up.returncode == 0, up.stderr[-3000:]
    # The session dies: its plane's processes end, its run dir stays (down.sh would remove it, node dir included).
    assert node_scripts("down.sh", dict(plane_env, KFT_K8S_KEEP_RUN_DIR="1"), timeout=120).returncode == 0
    stale = host_state_now()
    assert "link.kftbr0=present" in stale and "process=kubelet" in stale, stale
    other = dict(plane_env, KFT_K8S_RUN_DIR=str(tmp_path / "run"))
    try:
        assert node_scripts("up.sh", other, timeout=600).returncode == 0
        up = node_scripts("node-up.sh", other, timeout=600)
        assert up.returncode == 0, up.stderr[-3000:]
        assert "stale node tier of an earlier run" in up.stderr, up.stderr[-3000:]
        assert not (Path(plane_env["KFT_K8S_RUN_DIR"]) / "node").exists()
        assert json.loads((tmp_path / "run" / "node" / "status.json").read_text())["ok"]
    finally:
        down = node_scripts("node-down.sh", other, timeout=300)
        node_scripts("down.sh", other, timeout=120)
    assert down.returncode == 0, down.stderr[-3000:]
    after = host_state_now()
    assert after == before, {"left": sorted(set(after) - set(before)), "lost": sorted(set(before) - set(after))}
