#!/usr/bin/env bash
# Print, one "key=value" per line (sorted), the host state the real-kubelet tier can change:
# the sysctls the kubelet sets, the tier's bridge and veths, its iptables rules, mounts
# under its dirs, the kubelet's fixed paths, kubepods cgroups and the tier's processes.
# node-up.sh records it before it changes anything; node-down.sh restores it and the
# tests compare a fresh snapshot with the recorded one. Only the tier's own names are
# looked at, so other users of the machine (Docker, Podman) do not disturb it.
#
#   scripts/k8s/node-host-state.sh        (KFT_K8S_RUN_DIR as for up.sh)
set -uo pipefail
. "$(dirname "$0")/common.sh"
NODE_BRIDGE=${KFT_K8S_NODE_BRIDGE:-kftbr0}
NODE_RUN="$RUN_DIR/node"

{
  for s in vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
           kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward; do
    echo "sysctl.$s=$(sysctl -n "$s" 2>/dev/null)"
  done
  ip -o link show "$NODE_BRIDGE" >/dev/null 2>&1 && echo "link.$NODE_BRIDGE=present"
  ip -o link show master "$NODE_BRIDGE" 2>/dev/null | awk -F': ' '{print "link." $2 "=enslaved"}'
  for t in filter nat mangle; do
    iptables -t "$t" -S 2>/dev/null | grep -E "$NODE_BRIDGE|KUBE-|198\.18\.0\." | sed "s/^/iptables.$t=/"
  done
  awk -v a="$RUN_DIR" -v b="$NODE_HOME" '{ if (index($5, a) == 1 || index($5, b) == 1 || $5 ~ /^\/var\/lib\/kubelet/ || $5 ~ /kubepods/) print "mount=" $5 }' /proc/self/mountinfo
  for p in /var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /etc/kubernetes /opt/cni; do
    [ -e "$p" ] && echo "path.$p=present"
  done
  if [ -d /var/log/containers ]; then
    find /var/log/containers -maxdepth 1 -type l 2>/dev/null | while read -r l; do
      case $(readlink "$l") in "$NODE_RUN"/*) echo "symlink=$l" ;; esac
    done
  fi
  for d in /sys/fs/cgroup/*/; do
    [ -d "$d/kubepods" ] && echo "cgroup=${d}kubepods"
    [ -d "$d/kubepods.slice" ] && echo "cgroup=${d}kubepods.slice"
  done
  for e in /proc/[0-9]*/exe; do
    x=$(readlink "$e" 2>/dev/null) || continue
    case $x in "$NODE_BIN"/*) echo "process=$(basename "$x")" ;; esac
  done
  for d in /proc/[0-9]*; do  # our containerd instance: Debian's binary with our config
    [ "$(basename "$(readlink "$d/exe" 2>/dev/null)")" = containerd ] || continue
    case $(tr '\0' ' ' < "$d/cmdline") in *"$NODE_RUN/containerd.toml"*) echo "process=containerd" ;; esac
  done
} 2>/dev/null | sort
