#!/usr/bin/env bash
# Stop the real node that node-up.sh added and restore every host change it made:
# pods and the kubelet, CoreDNS, the endpointslice controller and the separate
# containerd stopped; leftover pod processes killed; mounts under the tier's dirs
# unmounted; kubepods cgroups removed; the bridge, its veths and the iptables FORWARD
# rule deleted; the kubelet's sysctls set back to the values recorded before; the
# kubelet's fixed paths (/var/lib/kubelet, /var/log/containers links, /var/lib/cni, ...)
# removed when node-up.sh found them absent; the KWOK nodes uncordoned. Then it compares
# node-host-state.sh with the recording and exits 1 (listing the differences) if any
# change survived. Safe to run when nothing is running; run it before down.sh.
#
#   scripts/k8s/node-down.sh      (KFT_K8S_RUN_DIR as for up.sh; KFT_K8S_KEEP_RUN_DIR=1 keeps $RUN_DIR/node)
set -uo pipefail
. "$(dirname "$0")/common.sh"

NODE_NAME=${KFT_K8S_NODE_NAME:-kft-node-0}
BRIDGE=${KFT_K8S_NODE_BRIDGE:-kftbr0}
NR="$RUN_DIR/node"
KC="$RUN_DIR/kubeconfig"
KUBECTL="$K8S_BIN/kubectl"
SOCK="$NR/containerd.sock"

if [ -z "${KFT_K8S_NODE_LOCK_HELD:-}" ] && [ -d "$(dirname "$RUN_DIR")" ]; then exec 8>"$RUN_DIR.node.lock"; flock -w 120 8 || true; fi
[ -d "$NR" ] || { k8s_log "no node to stop ($NR does not exist)"; exit 0; }
[ -f "$NR/.kft-k8s-node" ] || { echo "refusing: $NR was not made by node-up.sh" >&2; exit 2; }

kctl() { timeout 20 "$KUBECTL" --kubeconfig "$KC" --request-timeout 10s "$@"; }
ctrc() { timeout 30 ctr -a "$SOCK" -n k8s.io "$@"; }
pid_of() { local p; p=$(cat "$NR/pids/$1.pid" 2>/dev/null) && [ -n "$p" ] && [ -d "/proc/$p" ] && echo "$p"; }
stop() {  # NAME: TERM, wait up to 10 s, then KILL (only our pid files, checked against the binary)
  local p exe; p=$(pid_of "$1") || { rm -f "$NR/pids/$1.pid"; return 0; }
  exe=$(basename "$(readlink "/proc/$p/exe" 2>/dev/null)")
  case $exe in kubelet|coredns|kube-controller-manager|containerd) ;; *) rm -f "$NR/pids/$1.pid"; return 0 ;; esac
  kill -TERM "$p" 2>/dev/null
  for _ in $(seq 100); do [ -d "/proc/$p" ] || break; sleep 0.1; done
  [ -d "/proc/$p" ] && { kill -KILL "$p" 2>/dev/null; sleep 0.2; k8s_log "killed $1 ($p)"; } || k8s_log "stopped $1 ($p)"
  rm -f "$NR/pids/$1.pid"
}
api_up() { [ -x "$KUBECTL" ] && [ -f "$KC" ] && kctl get --raw /readyz >/dev/null 2>&1; }

# 1. Pods: let the kubelet stop them (CNI teardown), bounded; then the node object.
if api_up && pid_of kubelet >/dev/null; then
  kctl delete pods -A --field-selector "spec.nodeName=$NODE_NAME" --grace-period 1 --wait=false >/dev/null 2>&1
  for _ in $(seq 40); do
    [ -z "$(ctrc tasks ls -q 2>/dev/null)" ] && break; sleep 0.5
  done
fi
stop kubelet
if api_up; then
  kctl delete node "$NODE_NAME" --wait=false >/dev/null 2>&1
  kctl get nodes -l type=kwok -o name 2>/dev/null | xargs -r timeout 20 "$KUBECTL" --kubeconfig "$KC" uncordon >/dev/null 2>&1
fi
stop coredns
stop kcm-endpointslice
# Processes of this run whose pid files are gone (a killed session whose run dir was deleted): by identity.
for d in /proc/[0-9]*; do
  x=$(readlink "$d/exe" 2>/dev/null) || continue
  cmd=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null)
  case $x in
    "$NODE_BIN"/kubelet|"$NODE_BIN"/coredns) case $cmd in *"$NR/"*) ;; *) continue ;; esac ;;
    */kube-controller-manager) case $cmd in *endpointslice-controller*"$KC"*|*"$KC"*endpointslice-controller*) ;; *) continue ;; esac ;;
    *) continue ;;
  esac
  kill -KILL "${d#/proc/}" 2>/dev/null && k8s_log "killed leftover $(basename "$x") (${d#/proc/})"
done

# 2. Containers left in our containerd, then containerd itself.
if pid_of containerd >/dev/null; then
  for c in $(ctrc containers ls -q 2>/dev/null); do
    ctrc tasks kill -s SIGKILL "$c" >/dev/null 2>&1; sleep 0.1
    ctrc tasks rm -f "$c" >/dev/null 2>&1; ctrc containers rm "$c" >/dev/null 2>&1
  done
fi
stop containerd
for d in /proc/[0-9]*; do   # our containerd without its pid file
  [ "$(basename "$(readlink "$d/exe" 2>/dev/null)")" = containerd ] || continue
  case $(tr '\0' ' ' < "$d/cmdline" 2>/dev/null) in *"$NR/containerd.toml"*) kill -KILL "${d#/proc/}" 2>/dev/null; sleep 0.3 ;; esac
done

# 3. Processes still in the pods' cgroups (e.g. shims of a killed containerd), then the cgroups.
for d in /sys/fs/cgroup/*/kubepods; do
  [ -d "$d" ] || continue
  find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u | xargs -r kill -KILL 2>/dev/null
done
for p in /proc/[0-9]*; do   # shims of our containerd (their -address is our socket)
  [ "$(basename "$(readlink "$p/exe" 2>/dev/null)")" = containerd-shim-runc-v2 ] || continue
  case $(tr '\0' ' ' < "$p/cmdline" 2>/dev/null) in *"$SOCK"*) kill -KILL "${p#/proc/}" 2>/dev/null ;; esac
done
sleep 0.3

# 4. Mounts under our dirs (deepest first), the kubelet's root-dir bind mount included.
for _ in 1 2 3; do
  mnts=$(awk -v a="$RUN_DIR" -v b="$NODE_HOME" '{ if (index($5, a) == 1 || index($5, b) == 1) print $5 }' /proc/self/mountinfo | sort -r)
  [ -n "$mnts" ] || break
  for m in $mnts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
done
for _ in 1 2 3 4 5; do   # cgroups: rmdir depth-first (retry while the last tasks exit)
  left=0
  for d in /sys/fs/cgroup/*/kubepods; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    [ -d "$d" ] && left=1
  done
  [ $left = 0 ] && break; sleep 0.5
done

# 5. Network: veths on our bridge, the bridge, the FORWARD rule.
for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do ip link del "$v" 2>/dev/null; done
ip link del "$BRIDGE" 2>/dev/null
while iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT -m comment --comment kft-node-tier 2>/dev/null; do :; done

# 6. Sysctls and paths as recorded before node-up.sh changed anything.
BEFORE="$NR/host-before.txt"
if [ -f "$BEFORE" ]; then
  sed -n 's/^sysctl\.\([^=]*\)=\(.*\)$/\1 \2/p' "$BEFORE" | while read -r k v; do
    [ -n "$v" ] && [ "$(sysctl -n "$k" 2>/dev/null)" != "$v" ] && sysctl -qw "$k=$v"
  done
  if [ -d /var/log/containers ]; then
    find /var/log/containers -maxdepth 1 -type l | while read -r l; do
      case $(readlink "$l") in "$NR"/*) rm -f "$l" ;; esac
    done
  fi
  for p in /var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /etc/kubernetes /opt/cni; do
    grep -qxF "path.$p=present" "$BEFORE" && continue
    [ -e "$p" ] || continue
    if [ "$p" = /var/log/containers ] || [ "$p" = /var/log/pods ]; then rmdir "$p" 2>/dev/null || k8s_log "kept $p: not empty"
    else rm -rf "$p"; fi
  done
fi

# 7. Compare with the recording.
RC=0
if [ -f "$BEFORE" ]; then
  bash "$K8S_SCRIPTS_DIR/node-host-state.sh" > "$NR/host-after.txt"
  if ! diff -u "$BEFORE" "$NR/host-after.txt" > "$NR/host-diff.txt"; then
    k8s_log "host changes survived node-down.sh:"; grep '^[-+][^-+]' "$NR/host-diff.txt" >&2; RC=1
  else
    k8s_log "host state restored (same as before node-up.sh)"
    ACTIVE="$NODE_HOME/active"
    [ "$(cat "$ACTIVE/run-dir" 2>/dev/null)" = "$RUN_DIR" ] && rm -rf "$ACTIVE"
  fi
fi
if [ "${KFT_K8S_KEEP_RUN_DIR:-0}" = 1 ] || [ $RC != 0 ]; then
  k8s_log "kept $NR"
else
  rm -rf "$NR"; k8s_log "removed $NR"
fi
exit $RC
