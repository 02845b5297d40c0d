#!/usr/bin/env bash
# Add a real node to a running test control plane (up.sh): a separate containerd
# instance (Debian's binary, its own config/root/state/socket; the one Docker uses is
# never touched), the bridge CNI, CoreDNS for the cluster names, an endpointslice
# controller (a second kube-controller-manager) and a kubelet. Imports the pause image
# and the test images into containerd's k8s.io namespace, tags the torch test image
# under the image of the torch-distributed runtime, and cordons the KWOK nodes so that
# pods land on the real node. node-down.sh undoes all of it, host changes included.
#
#   scripts/k8s/up.sh && scripts/k8s/node-up.sh     (KFT_K8S_RUN_DIR as for up.sh)
#
# Writes $RUN_DIR/node/status.json ({"ok": bool, "reason": ..., "node": ..., ...}).
# Exit status 0 when the node is Ready with its images, 1 otherwise (reason on stderr
# and in status.json). Run as root (bridge, iptables, cgroups).
#
# Knobs: KFT_K8S_NODE_IMAGES   Docker images to import
#                              [localhost/kubeflow-trainer-test/torch:cpu localhost/kubeflow-trainer-test/python:slim
#                               and the Trainer's initializer images node-build.sh built, under the runtimes' names]
#        KFT_K8S_NODE_BACKOFF_LIMIT [0]  backoffLimit set on the torch-distributed runtime's Job ("default":
#                              leave upstream's, i.e. Kubernetes' 6 retries with back-off)
#        KFT_K8S_NODE_RESTART_POLICY [Never]  restartPolicy of that runtime's node pods ("default": leave it
#                              unset, which the JobSet webhook turns into OnFailure; see README "Findings")
#        KFT_K8S_NODE_NAME [kft-node-0]  KFT_K8S_NODE_BRIDGE [kftbr0]  KFT_K8S_NODE_SUBNET [198.18.0]
#        KFT_K8S_PORT_KUBELET [10350] _KUBELET_HEALTH [10348] _EPS_KCM [10358] _COREDNS_READY [18181]
set -uo pipefail
. "$(dirname "$0")/common.sh"

NODE_NAME=${KFT_K8S_NODE_NAME:-kft-node-0}
BRIDGE=${KFT_K8S_NODE_BRIDGE:-kftbr0}
SUBNET=${KFT_K8S_NODE_SUBNET:-198.18.0}   # a /24 of the benchmarking range 198.18.0.0/15, no route out
GW="$SUBNET.1"
P_KUBELET=${KFT_K8S_PORT_KUBELET:-10350}
P_KUBELET_HZ=${KFT_K8S_PORT_KUBELET_HEALTH:-10348}
P_EPS=${KFT_K8S_PORT_EPS_KCM:-10358}
P_DNS_READY=${KFT_K8S_PORT_COREDNS_READY:-18181}
INIT_IMAGES="ghcr.io/kubeflow/trainer/dataset-initializer:v$TRAINER_VERSION ghcr.io/kubeflow/trainer/model-initializer:v$TRAINER_VERSION"
IMAGES=${KFT_K8S_NODE_IMAGES:-localhost/kubeflow-trainer-test/torch:cpu localhost/kubeflow-trainer-test/python:slim $INIT_IMAGES}
TORCH_IMAGE=localhost/kubeflow-trainer-test/torch:cpu
WAIT=${KFT_K8S_WAIT:-120}

NR="$RUN_DIR/node"
KC="$RUN_DIR/kubeconfig"
KUBECTL="$K8S_BIN/kubectl"
SOCK="$NR/containerd.sock"
CTR_ROOT="$NODE_HOME/containerd-root"   # image store, kept between runs (imports are done once per image id)
T0=$SECONDS

kctl() { "$KUBECTL" --kubeconfig "$KC" "$@"; }
ctrc() { ctr -a "$SOCK" -n k8s.io "$@"; }
ctrc_ok() { ctrc version >/dev/null 2>&1; }
fail() {  # reason: record, print, exit 1 (node-down.sh cleans up)
  k8s_log "node tier FAILED: $*"
  write_status false "$*"
  exit 1
}
write_status() {  # ok reason
  python3 - "$NR/status.json" "$1" "$2" "$NODE_NAME" "${NODE_IP:-}" "$GW" "$((SECONDS - T0))" "${IMPORTED:-}" "${RUNTIME_IMAGE:-}" <<'EOF'
import json, sys
out, ok, reason, node, ip, dns, secs, images, runtime_image = sys.argv[1:]
json.dump({"ok": ok == "true", "reason": reason, "node": node, "node_ip": ip, "cluster_dns": dns,
           "startup_seconds": int(secs), "images": images.split(), "torch_runtime_image": runtime_image},
          open(out, "w"), indent=1)
EOF
}
start() {  # NAME CMD...: own session, log in $NR/logs/NAME.log, pid in $NR/pids/NAME.pid
  local name=$1; shift
  local pidf="$NR/pids/$name.pid"
  ( cd "$NR" && exec setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidf" "$@" \
      >"$NR/logs/$name.log" 2>&1 </dev/null 8>&- 9>&- ) &
  local i; for i in $(seq 50); do [ -s "$pidf" ] && return 0; sleep 0.1; done
  return 1
}
alive() { local p; p=$(cat "$NR/pids/$1.pid" 2>/dev/null) && [ -n "$p" ] && [ -d "/proc/$p" ]; }
wait_for() {  # NAME CHECK...: bounded poll, fails early when the process exits
  local name=$1 t=$SECONDS; shift
  until "$@"; do
    if ! alive "$name"; then
      fail "$name exited: $(grep -m1 -iE 'error|fatal|fail' "$NR/logs/$name.log" | cut -c1-300 | tr -d '"\\') (log: $NR/logs/$name.log)"
    fi
    [ $((SECONDS - t)) -lt "$WAIT" ] || fail "$name not ready after ${WAIT}s (log: $NR/logs/$name.log)"
    sleep 0.3
  done
  k8s_log "$name ready after $((SECONDS - t))s"
}
port_busy() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

main() {
mkdir -p "$(dirname "$RUN_DIR")"
exec 8>"$RUN_DIR.node.lock"
flock -w 600 8 || { echo "timed out waiting for $RUN_DIR.node.lock" >&2; exit 2; }
[ -f "$RUN_DIR/.kft-k8s-run" ] || { echo "no control plane in $RUN_DIR: run scripts/k8s/up.sh first" >&2; exit 1; }
if [ -f "$NR/status.json" ] && python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["ok"] else 1)' "$NR/status.json" \
   && alive kubelet && alive containerd; then
  k8s_log "node $NODE_NAME already up in $NR"; exit 0
fi
# A node tier of an earlier run in another run dir (a killed session: its bridge, containerd, kubelet may be
# left): clean it with node-down.sh on that run dir, unless its control plane still runs.
ACTIVE="$NODE_HOME/active"   # RUN_DIR of the node tier that changed the host, and its host-before.txt
if [ -f "$ACTIVE/run-dir" ] && [ "$(cat "$ACTIVE/run-dir")" != "$RUN_DIR" ]; then
  OLD=$(cat "$ACTIVE/run-dir")
  old_pid=$(cat "$OLD/pids/kube-apiserver.pid" 2>/dev/null)
  if [ -n "$old_pid" ] && [ -d "/proc/$old_pid" ] && [ -f "$OLD/node/status.json" ]; then
    echo "a node tier of another control plane is running (KFT_K8S_RUN_DIR=$OLD): stop it first with KFT_K8S_RUN_DIR=$OLD scripts/k8s/node-down.sh" >&2
    exit 1
  fi
  k8s_log "stale node tier of an earlier run in $OLD: running node-down.sh on it first"
  if [ ! -f "$OLD/node/.kft-k8s-node" ]; then   # its run dir is gone: node-down.sh works from the copy kept here
    mkdir -p "$OLD/node" && touch "$OLD/node/.kft-k8s-node" && cp "$ACTIVE/host-before.txt" "$OLD/node/host-before.txt"
  fi
  KFT_K8S_RUN_DIR=$OLD bash "$K8S_SCRIPTS_DIR/node-down.sh" >&2 \
    || { echo "node-down.sh could not restore the host after the earlier run in $OLD: see $OLD/node/host-diff.txt" >&2; exit 1; }
  rmdir "$OLD" 2>/dev/null   # only if node-down.sh left it empty (a run dir that was already gone)
fi
if [ -e "$NR" ]; then
  k8s_log "stale node dir $NR: running node-down.sh first"
  KFT_K8S_NODE_LOCK_HELD=1 bash "$K8S_SCRIPTS_DIR/node-down.sh" >&2 \
    || { echo "node-down.sh could not restore the host after an earlier run: see $NR/host-diff.txt" >&2; exit 1; }
fi
mkdir -p "$NR"/{logs,pids,etc,cni/net.d,cni/ipam,kubelet,pki,pod-logs,containerd-state,runc}
touch "$NR/.kft-k8s-node"
# What the host looks like before we touch it: node-down.sh restores this.
bash "$K8S_SCRIPTS_DIR/node-host-state.sh" > "$NR/host-before.txt"
# ... and, outside the run dir (a test's temp dir may be deleted), which run changes the host: the next
# node-up.sh cleans it if this run is killed before node-down.sh.
mkdir -p "$ACTIVE" && cp "$NR/host-before.txt" "$ACTIVE/host-before.txt" && echo "$RUN_DIR" > "$ACTIVE/run-dir"
write_status false "starting"

# ------------------------------------------------------------------ preconditions (clear reasons)
[ "$(id -u)" = 0 ] || fail "the real-kubelet tier needs root (bridge, iptables, cgroups)"
for c in containerd ctr runc containerd-shim-runc-v2 iptables ip docker; do
  command -v "$c" >/dev/null || fail "$c is not installed (containerd: apt-get install containerd; docker: docker.io)"
done
for b in kubelet coredns cni/bridge cni/host-local cni/loopback; do
  [ -x "$NODE_BIN/$b" ] || fail "$NODE_BIN/$b is not built: run scripts/k8s/node-build.sh ($(cut -c1-200 "$NODE_HOME/build-status" 2>/dev/null | grep -v ' ok ' | tr '\n' ' '))"
done
[ -s "$NODE_HOME/pause-image.tar" ] || fail "the pause image is not built: run scripts/k8s/node-build.sh pause"
PAUSE_IMAGE=$(cat "$NODE_HOME/pause-image.ref")
python3 - "$RUN_DIR/components.json" <<'EOF' || fail "the control plane is not complete: $(cat "$NR/plane-missing" 2>/dev/null)"
import json, sys
c = json.load(open(sys.argv[1]))["components"]
need = ["kube-apiserver", "crds", "kube-controller-manager", "kube-scheduler", "jobset", "trainer", "webhooks", "runtimes"]
bad = {k: c.get(k, "missing") for k in need if c.get(k) != "ok"}
if bad:
    open(sys.argv[1].rsplit("/", 1)[0] + "/node/plane-missing", "w").write(json.dumps(bad))
    sys.exit(1)
EOF
# The node address: the default route's source address (the apiserver reaches the kubelet
# there for logs; traffic to it stays on this machine). Loopback is refused by the kubelet.
NODE_IP=${KFT_K8S_NODE_IP:-$(ip -4 route get 192.0.2.254 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1)}
[ -n "$NODE_IP" ] || NODE_IP=$(ip -4 -o addr show scope global | awk '$2 != "docker0" && $2 != "'"$BRIDGE"'" {sub("/.*", "", $4); print $4; exit}')
[ -n "$NODE_IP" ] || fail "no non-loopback IPv4 address on this machine for the node (set KFT_K8S_NODE_IP)"
for hp in "$NODE_IP:$P_KUBELET" "127.0.0.1:$P_KUBELET_HZ" "127.0.0.1:$P_EPS" "127.0.0.1:$P_DNS_READY"; do
  port_busy "${hp%:*}" "${hp#*:}" && fail "port $hp is already in use (another node tier? set KFT_K8S_PORT_*)"
done
ip -o link show "$BRIDGE" >/dev/null 2>&1 && fail "network interface $BRIDGE already exists and no earlier run of the node tier is recorded in $ACTIVE (not ours? delete it with: ip link del $BRIDGE, or set KFT_K8S_NODE_BRIDGE)"

# ------------------------------------------------------------------ network: bridge, FORWARD rule, CNI config
ip link add "$BRIDGE" type bridge || fail "could not create bridge $BRIDGE"
ip addr add "$GW/24" dev "$BRIDGE" && ip link set "$BRIDGE" up || fail "could not configure bridge $BRIDGE"
# Pods get one route besides their subnet: to this machine's node address (NODE_IP/32 via the bridge), so that
# they reach the tests' servers there, as containers do; still no route out.
# Docker sets the FORWARD policy to DROP and bridged traffic passes iptables here.
iptables -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT -m comment --comment kft-node-tier \
  || fail "could not add the iptables FORWARD rule for $BRIDGE"
cat > "$NR/cni/net.d/10-kft.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kft-pods",
  "plugins": [{
    "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "dataDir": "$NR/cni/ipam",
             "ranges": [[{"subnet": "$SUBNET.0/24", "rangeStart": "$SUBNET.10", "rangeEnd": "$SUBNET.250", "gateway": "$GW"}]],
             "routes": [{"dst": "$NODE_IP/32", "gw": "$GW"}]}
  }]
}
EOF

# ------------------------------------------------------------------ containerd (own instance)
mkdir -p "$CTR_ROOT"
cat > "$NR/containerd.toml" <<EOF
version = 2
root = "$CTR_ROOT"
state = "$NR/containerd-state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$NR/containerd.ttrpc.sock"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$NR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$NODE_BIN/cni"
    conf_dir = "$NR/cni/net.d"
    max_conf_num = 1
EOF
start containerd containerd --config "$NR/containerd.toml" --log-level warn
wait_for containerd ctrc_ok
# Containers left by a run that was killed (the store is kept between runs).
for c in $(ctrc containers ls -q 2>/dev/null); do ctrc tasks kill -s SIGKILL "$c" >/dev/null 2>&1; ctrc tasks rm -f "$c" >/dev/null 2>&1; ctrc containers rm "$c" >/dev/null 2>&1; done

# ------------------------------------------------------------------ images
import_docker() {  # docker image -> containerd, skipped when the same image id was imported before
  local ref=$1 id mark
  id=$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null) || return 1
  mark="$CTR_ROOT/.imported-$(echo "$ref" | tr '/:' '__')"
  if [ "$(cat "$mark" 2>/dev/null)" = "$id" ] && ctrc images ls -q | grep -qxF "$ref"; then
    k8s_log "image $ref already in containerd ($id)"; return 0
  fi
  local t=$SECONDS
  docker save "$ref" | ctrc images import --all-platforms - >"$NR/logs/import.log" 2>&1 || return 2
  echo "$id" > "$mark"
  k8s_log "imported $ref in $((SECONDS - t))s"
}
ctrc images import "$NODE_HOME/pause-image.tar" >/dev/null 2>"$NR/logs/import-pause.log" \
  || fail "could not import the pause image: $(tail -n1 "$NR/logs/import-pause.log")"
IMPORTED="$PAUSE_IMAGE"
for ref in $IMAGES; do
  import_docker "$ref"; rc=$?
  case $rc in
    0) IMPORTED+=" $ref" ;;
    1) case " $INIT_IMAGES " in
         *" $ref "*) fail "Docker has no image $ref: run scripts/k8s/node-build.sh initializers" ;;
         *) fail "Docker has no image $ref: run scripts/containers/build-test-image.sh all (with the Docker engine up)" ;;
       esac ;;
    *) fail "importing $ref into containerd failed: $(tail -n2 "$NR/logs/import.log" | tr '\n' ' ')" ;;
  esac
done
# Jobs on the torch-distributed runtime name the runtime's image: serve it from the torch test image.
RUNTIME_IMAGE=$(kctl get clustertrainingruntime torch-distributed -o jsonpath='{.spec.template.spec.replicatedJobs[?(@.name=="node")].template.spec.template.spec.containers[?(@.name=="node")].image}' 2>/dev/null)
if [ -n "$RUNTIME_IMAGE" ] && case " $IMPORTED " in *" $TORCH_IMAGE "*) true ;; *) false ;; esac; then
  case $RUNTIME_IMAGE in */*/*) full=$RUNTIME_IMAGE ;; */*) full="docker.io/$RUNTIME_IMAGE" ;; *) full="docker.io/library/$RUNTIME_IMAGE" ;; esac
  ctrc images tag --force "$TORCH_IMAGE" "$full" >/dev/null || fail "could not tag $TORCH_IMAGE as $full"
  IMPORTED+=" $full"
fi

# Failures as a cluster admin who wants them reported sets them up (upstream's torch-distributed sets neither):
# - backoffLimit 0: a failed pod fails its Job at once (Kubernetes' default 6 retries take ~5 min);
# - restartPolicy Never: the failed pod and its log stay until the TrainJob is deleted. Unset, the JobSet webhook
#   defaults it to OnFailure: the kubelet restarts the container in place, and the Job controller deletes the
#   still-"Running" pod when the restarts exceed backoffLimit (pastBackoffLimitOnFailure), log included.
# A TrainJob cannot set either (Trainer v2.3.0's runtimePatches have no backoffLimit or restartPolicy).
BACKOFF=${KFT_K8S_NODE_BACKOFF_LIMIT:-0}
RESTART=${KFT_K8S_NODE_RESTART_POLICY:-Never}
PATCH=""
POD_SPEC=/spec/template/spec/replicatedJobs/0/template/spec
[ "$BACKOFF" != default ] && PATCH+="{\"op\": \"add\", \"path\": \"$POD_SPEC/backoffLimit\", \"value\": $BACKOFF},"
[ "$RESTART" != default ] && PATCH+="{\"op\": \"add\", \"path\": \"$POD_SPEC/template/spec/restartPolicy\", \"value\": \"$RESTART\"},"
if [ -n "$PATCH" ]; then
  kctl patch clustertrainingruntime torch-distributed --type json -p "[${PATCH%,}]" \
    >/dev/null 2>"$NR/logs/patch-runtime.log" || fail "could not set backoffLimit/restartPolicy on torch-distributed: $(tail -n1 "$NR/logs/patch-runtime.log")"
fi

# ------------------------------------------------------------------ CoreDNS on the bridge address
cat > "$NR/etc/Corefile" <<EOF
.:53 {
  bind $GW
  ready 127.0.0.1:$P_DNS_READY
  errors
  log
  kubernetes cluster.local {
    kubeconfig $KC kft-local
  }
}
EOF
start coredns "$NODE_BIN/coredns" -conf "$NR/etc/Corefile"

# ------------------------------------------------------------------ endpointslice controller (DNS of headless services)
start kcm-endpointslice "$K8S_BIN/kube-controller-manager" --kubeconfig "$KC" \
  --authentication-kubeconfig "$KC" --authorization-kubeconfig "$KC" \
  --leader-elect=false --bind-address 127.0.0.1 --secure-port "$P_EPS" \
  --controllers endpointslice-controller,endpointslice-mirroring-controller --profiling=false

# ------------------------------------------------------------------ kubelet
cat > "$NR/etc/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
makeIPTablesUtilChains: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
podLogsDir: $NR/pod-logs
address: $NODE_IP
port: $P_KUBELET
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $P_KUBELET_HZ
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $RUN_DIR/pki/ca.crt}
authorization: {mode: AlwaysAllow}
clusterDNS: [$GW]
clusterDomain: cluster.local
resolvConf: ""
containerRuntimeEndpoint: unix://$SOCK
serializeImagePulls: false
registerNode: true
nodeStatusUpdateFrequency: 4s
syncFrequency: 10s
EOF
start kubelet "$NODE_BIN/kubelet" --config "$NR/etc/kubelet.yaml" --kubeconfig "$KC" \
  --root-dir "$NR/kubelet" --cert-dir "$NR/pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
  --node-labels "type=kft-real-node" --v 1

dns_ready() { curl -fsS --max-time 3 "http://127.0.0.1:$P_DNS_READY/ready" >/dev/null 2>&1; }
eps_ready() { [ "$(curl -ksS --max-time 3 "https://127.0.0.1:$P_EPS/healthz" 2>/dev/null)" = ok ]; }
kubelet_ready() { [ "$(curl -fsS --max-time 3 "http://127.0.0.1:$P_KUBELET_HZ/healthz" 2>/dev/null)" = ok ]; }
node_ready() { [ "$(kctl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; }
wait_for coredns dns_ready
wait_for kcm-endpointslice eps_ready
wait_for kubelet kubelet_ready
wait_for kubelet node_ready

# ------------------------------------------------------------------ pods go to the real node
kctl get nodes -l type=kwok -o name 2>/dev/null | xargs -r "$KUBECTL" --kubeconfig "$KC" cordon >/dev/null \
  || fail "could not cordon the KWOK nodes"

write_status true ""
k8s_log "node $NODE_NAME ($NODE_IP) Ready in $((SECONDS - T0))s; images: $IMPORTED"
}
main "$@"; exit $?
