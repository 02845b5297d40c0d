#!/usr/bin/env bash
# Start the local Kubernetes control plane on 127.0.0.1 from the binaries that
# build.sh put in the cache:
#   etcd -> kube-apiserver -> CRDs -> kube-controller-manager, kube-scheduler,
#   kwok (fake nodes) -> jobset, trainer-controller-manager -> webhooks -> runtimes
#
#   scripts/k8s/up.sh          (KFT_K8S_RUN_DIR overrides the runtime dir)
#
# Tiered: a component that is not built or does not start is recorded as
# "missing: <why>" in $RUN_DIR/components.json and the rest keeps going.
# Exit status: 0 if kube-apiserver is up (tier 1), 1 otherwise. Run down.sh to stop.
# Prints "KUBECONFIG=<path>" on its last line.
#
# Environment knobs (defaults in brackets):
#   KFT_K8S_NODES [2]            number of KWOK fake nodes
#   KFT_K8S_KWOK_STAGES [general] "general" (delays 1s + 0..5s jitter per step,
#                                 per-pod annotations) or "fast" (immediate)
#   KFT_K8S_WAIT [120]           bound in seconds for each readiness wait
#   KFT_K8S_PORT_* see below     listen ports (all on 127.0.0.1)
#   KFT_K8S_SKIP [""]            components not to start, e.g. "jobset trainer kwok"
#                                (names as in components.json)
set -uo pipefail
. "$(dirname "$0")/common.sh"

P_ETCD=${KFT_K8S_PORT_ETCD:-22379}
P_ETCD_PEER=${KFT_K8S_PORT_ETCD_PEER:-22380}
P_API=${KFT_K8S_PORT_APISERVER:-16443}
P_KCM=${KFT_K8S_PORT_KCM:-10257}
P_SCHED=${KFT_K8S_PORT_SCHEDULER:-10259}
P_KWOK=${KFT_K8S_PORT_KWOK:-10250}
P_TRAINER_WH=${KFT_K8S_PORT_TRAINER_WEBHOOK:-9443}
P_TRAINER_HZ=${KFT_K8S_PORT_TRAINER_HEALTH:-18081}
P_JOBSET_WH=${KFT_K8S_PORT_JOBSET_WEBHOOK:-9444}
P_JOBSET_HZ=${KFT_K8S_PORT_JOBSET_HEALTH:-18082}
NODES=${KFT_K8S_NODES:-2}
STAGES=${KFT_K8S_KWOK_STAGES:-general}
WAIT=${KFT_K8S_WAIT:-120}

T0=$SECONDS
KC="$RUN_DIR/kubeconfig"
PKI="$RUN_DIR/pki"
ST="$RUN_DIR/status"
# Resolve the real interpreter once (pyenv shims cost ~0.3 s per call).
PY=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)' 2>/dev/null || echo python3)
HELPER="$K8S_SCRIPTS_DIR/manifests.py"
KUBECTL="$K8S_BIN/kubectl"

# ------------------------------------------------------------------ helpers
already_up() {
  [ -f "$RUN_DIR/pids/kube-apiserver.pid" ] || return 1
  local pid; pid=$(cat "$RUN_DIR/pids/kube-apiserver.pid")
  [ -d "/proc/$pid" ] && api_ready
}
status() {  # component "ok" | "missing: why"
  printf '%s\n' "$2" > "$ST/$1"
  [ "$2" = ok ] && k8s_log "$1: ok" || k8s_log "$1: $2"
}
write_status_json() {
  "$PY" "$HELPER" status "$ST" "$RUN_DIR/components.json" \
    "kubeconfig=$KC" "server=https://127.0.0.1:$P_API" "run_dir=$RUN_DIR" "bin_dir=$K8S_BIN" \
    "k8s_version=$K8S_VERSION" "etcd_version=$ETCD_VERSION" "trainer_version=$TRAINER_VERSION" \
    "jobset_version=$JOBSET_VERSION" "kwok_version=$KWOK_VERSION" \
    "kwok_default_log=$RUN_DIR/kwok/logs/default.log" "kwok_log_dir=$RUN_DIR/kwok/logs" \
    "startup_seconds=$((SECONDS - T0))" "phase=${PHASE:-starting}" 2>/dev/null || true
}
ok() { [ "$(cat "$ST/$1" 2>/dev/null)" = ok ]; }

# start NAME CMD... : run in its own session, log to logs/NAME.log, pid in pids/NAME.pid
start() {
  local name=$1; shift
  local pidf="$RUN_DIR/pids/$name.pid"
  rm -f "$pidf"
  ( cd "$RUN_DIR" && exec setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pidf" "$@" \
      >"$RUN_DIR/logs/$name.log" 2>&1 </dev/null 8>&- ) &
  local i; for i in $(seq 50); do [ -s "$pidf" ] && return 0; sleep 0.1; done
  return 1
}
alive() { local p; p=$(cat "$RUN_DIR/pids/$1.pid" 2>/dev/null) && [ -n "$p" ] && [ -d "/proc/$p" ]; }

# wait_for NAME CHECK_FUNC : bounded poll; fails early if the process died.
wait_for() {
  local name=$1 check=$2 t=$SECONDS
  while ! $check; do
    if ! alive "$name"; then
      k8s_log "$name exited; last log lines:"; tail -n 20 "$RUN_DIR/logs/$name.log" >&2
      WHY="process exited: $(grep -m1 -iE 'error|fatal|fail' "$RUN_DIR/logs/$name.log" | cut -c1-160 | tr -d '"\\')"
      return 1
    fi
    if [ $((SECONDS - t)) -ge "$WAIT" ]; then
      k8s_log "$name not ready after ${WAIT}s; last log lines:"; tail -n 20 "$RUN_DIR/logs/$name.log" >&2
      WHY="not ready after ${WAIT}s (see $RUN_DIR/logs/$name.log)"
      return 1
    fi
    sleep 0.3
  done
  k8s_log "$name ready after $((SECONDS - t))s"
}
stop_one() {  # give up on a component that failed its readiness
  local p; p=$(cat "$RUN_DIR/pids/$1.pid" 2>/dev/null) || return 0
  [ -n "$p" ] && kill "$p" 2>/dev/null
  rm -f "$RUN_DIR/pids/$1.pid"
}

curl_api() { curl -fsS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://127.0.0.1:$P_API$1"; }
api_ready() { [ "$(curl_api /readyz 2>/dev/null)" = ok ]; }
etcd_ready() { curl -fsS --max-time 3 "http://127.0.0.1:$P_ETCD/readyz" >/dev/null 2>&1; }
kcm_ready() { [ "$(curl -ksS --max-time 3 "https://127.0.0.1:$P_KCM/healthz" 2>/dev/null)" = ok ]; }
sched_ready() { [ "$(curl -ksS --max-time 3 "https://127.0.0.1:$P_SCHED/healthz" 2>/dev/null)" = ok ]; }
kwok_ready() { curl -ksfS --max-time 3 "https://127.0.0.1:$P_KWOK/healthz" >/dev/null 2>&1; }
jobset_ready() { curl -fsS --max-time 3 "http://127.0.0.1:$P_JOBSET_HZ/readyz" >/dev/null 2>&1; }
trainer_ready() { curl -fsS --max-time 3 "http://127.0.0.1:$P_TRAINER_HZ/readyz" >/dev/null 2>&1; }
kctl() { "$KUBECTL" --kubeconfig "$KC" "$@"; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# need_bin COMPONENT BINARY [PORT...] -> 0 if it may start; else records why not.
need_bin() {
  local c=$1 b=$2 p why; shift 2
  case " ${KFT_K8S_SKIP:-} " in *" $c "*) status "$c" "missing: skipped (KFT_K8S_SKIP)"; return 1 ;; esac
  if [ ! -x "$K8S_BIN/$b" ]; then
    why=$(grep "^$b " "$K8S_HOME/build-status" 2>/dev/null | cut -d' ' -f2- | cut -c1-160)
    status "$c" "missing: binary $b not built (${why:-run scripts/k8s/build.sh})"; return 1
  fi
  for p in "$@"; do
    if port_busy "$p"; then status "$c" "missing: port 127.0.0.1:$p already in use (another control plane? set KFT_K8S_PORT_*)"; return 1; fi
  done
}

# The whole start sequence is one function, parsed before it runs.
main() {
# ------------------------------------------------------------------ start
# Serialize concurrent up/down calls on the same runtime dir (e.g. pytest-xdist workers).
mkdir -p "$(dirname "$RUN_DIR")"
exec 8>"$RUN_DIR.lock"
flock -w 600 8 || { echo "timed out waiting for $RUN_DIR.lock" >&2; exit 2; }
if already_up; then
  k8s_log "control plane already running in $RUN_DIR"
  echo "KUBECONFIG=$KC"; exit 0
fi
if [ -e "$RUN_DIR" ]; then
  k8s_log "stale runtime dir $RUN_DIR: running down.sh first"
  KFT_K8S_LOCK_HELD=1 bash "$K8S_SCRIPTS_DIR/down.sh" >/dev/null 2>&1 || true
fi
if [ -e "$RUN_DIR" ] && [ ! -f "$RUN_DIR/.kft-k8s-run" ]; then
  echo "refusing to use $RUN_DIR: exists and was not made by up.sh" >&2; exit 2
fi
mkdir -p "$RUN_DIR"/{pki,logs,pids,etc,status,etcd,kwok/logs,trainer-tmp/k8s-webhook-server/serving-certs,jobset-certs}
touch "$RUN_DIR/.kft-k8s-run"
chmod 700 "$RUN_DIR/etcd"
for c in etcd kube-apiserver crds kube-controller-manager kube-scheduler kwok nodes jobset trainer webhooks runtimes; do
  echo "missing: not started yet" > "$ST/$c"
done
PHASE=starting write_status_json

if ! command -v openssl >/dev/null || ! command -v curl >/dev/null || ! "$PY" -c 'import yaml' 2>/dev/null; then
  k8s_log "up.sh needs openssl, curl and python3 with PyYAML"
fi

# ------------------------------------------------------------------ PKI + kubeconfig
(
  set -e; cd "$PKI"
  q() { "$@" >/dev/null 2>&1; }
  q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=kft-local-ca"
  sign() {  # name subj ext
    q openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
    printf '%s\n' "$3" > "$1.ext"
    q openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out "$1.crt" -extfile "$1.ext"
  }
  sign apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment"
  sign admin "/O=system:masters/CN=kubernetes-admin" "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
  sign webhook "/CN=localhost" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment"
  q openssl genrsa -out sa.key 2048
  q openssl rsa -in sa.key -pubout -out sa.pub
  rm -f ./*.csr ./*.ext ca.srl
  chmod 600 ./*.key
)
if [ ! -s "$PKI/admin.crt" ]; then status etcd "missing: PKI generation with openssl failed"; exit 1; fi
cp "$PKI/webhook.crt" "$RUN_DIR/trainer-tmp/k8s-webhook-server/serving-certs/tls.crt"
cp "$PKI/webhook.key" "$RUN_DIR/trainer-tmp/k8s-webhook-server/serving-certs/tls.key"
cp "$PKI/webhook.crt" "$RUN_DIR/jobset-certs/tls.crt"; cp "$PKI/webhook.key" "$RUN_DIR/jobset-certs/tls.key"
b64() { base64 -w0 < "$1"; }
cat > "$KC" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kft-local
  cluster:
    server: https://127.0.0.1:$P_API
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: kft-admin
  user:
    client-certificate-data: $(b64 "$PKI/admin.crt")
    client-key-data: $(b64 "$PKI/admin.key")
contexts:
- name: kft-local
  context: {cluster: kft-local, user: kft-admin, namespace: default}
current-context: kft-local
EOF
chmod 600 "$KC"

# ------------------------------------------------------------------ tier 1: etcd + apiserver
if need_bin etcd etcd "$P_ETCD" "$P_ETCD_PEER"; then
  start etcd "$K8S_BIN/etcd" --name default --data-dir "$RUN_DIR/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$P_ETCD" --advertise-client-urls "http://127.0.0.1:$P_ETCD" \
    --listen-peer-urls "http://127.0.0.1:$P_ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$P_ETCD_PEER" \
    --initial-cluster "default=http://127.0.0.1:$P_ETCD_PEER" \
    --quota-backend-bytes 4294967296 --log-level warn
  if wait_for etcd etcd_ready; then status etcd ok; else status etcd "missing: $WHY"; stop_one etcd; fi
fi

if ! ok etcd; then
  status kube-apiserver "missing: etcd is not running"
  PHASE=starting write_status_json
elif need_bin kube-apiserver kube-apiserver "$P_API"; then
  start kube-apiserver "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$P_ETCD" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$P_API" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --authorization-mode RBAC \
    --disable-admission-plugins ServiceAccount,TaintNodesByCondition \
    --enable-priority-and-fairness=false \
    --allow-privileged=true \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --kubelet-client-certificate "$PKI/admin.crt" --kubelet-client-key "$PKI/admin.key" \
    --endpoint-reconciler-type none \
    --profiling=false
  if wait_for kube-apiserver api_ready; then status kube-apiserver ok; else status kube-apiserver "missing: $WHY"; fi
  PHASE=starting write_status_json
fi
if ! ok kube-apiserver; then
  for c in crds kube-controller-manager kube-scheduler kwok nodes jobset trainer webhooks runtimes; do
    status "$c" "missing: kube-apiserver is not running"
  done
  PHASE=failed write_status_json
  k8s_log "tier 1 failed; see $RUN_DIR/logs"; echo "KUBECONFIG=$KC"; exit 1
fi

# ------------------------------------------------------------------ CRDs
M="$K8S_MANIFESTS"
if [ ! -x "$KUBECTL" ]; then
  status crds "missing: kubectl not built (needed to apply manifests)"
elif [ ! -f "$M/.complete" ]; then
  status crds "missing: manifests not extracted (run scripts/k8s/build.sh manifests)"
else
  CRDS=("$M"/trainer/base/crds/trainer.kubeflow.org_*.yaml "$M"/jobset/crd/jobset.x-k8s.io_jobsets.yaml
        "$M"/kwok/crd/bases/kwok.x-k8s.io_logs.yaml "$M"/kwok/crd/bases/kwok.x-k8s.io_clusterlogs.yaml)
  args=(); for f in "${CRDS[@]}"; do args+=(-f "$f"); done
  # Server-side apply: the trainer CRDs are too large for client-side apply's annotation.
  if out=$(kctl apply --server-side --force-conflicts "${args[@]}" 2>&1) \
     && out=$(kctl wait --for condition=Established --timeout "${WAIT}s" "${args[@]}" 2>&1); then
    status crds ok
  else
    status crds "missing: $(echo "$out" | tail -n1 | cut -c1-200 | tr -d '"\\')"
  fi
fi

# ------------------------------------------------------------------ KCM, scheduler, kwok
if need_bin kube-controller-manager kube-controller-manager "$P_KCM"; then
  start kube-controller-manager "$K8S_BIN/kube-controller-manager" --kubeconfig "$KC" \
    --authentication-kubeconfig "$KC" --authorization-kubeconfig "$KC" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "$P_KCM" \
    --controllers job-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,ttl-after-finished-controller,pod-garbage-collector-controller,root-ca-certificate-publisher-controller \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials=false --concurrent-gc-syncs 5 --profiling=false
fi
if need_bin kube-scheduler kube-scheduler "$P_SCHED"; then
  start kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig "$KC" \
    --authentication-kubeconfig "$KC" --authorization-kubeconfig "$KC" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port "$P_SCHED" --profiling=false
fi
if need_bin kwok kwok "$P_KWOK"; then
  if ! ok crds; then
    status kwok "missing: CRDs (kwok Logs/ClusterLogs) not applied"
  else
    KW="$RUN_DIR/etc/kwok.yaml"
    {
      for f in "$M"/kwok/stage/node/fast/node-initialize.yaml \
               "$M"/kwok/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml; do
        echo "---"; cat "$f"
      done
      if [ "$STAGES" = fast ]; then PST="$M/kwok/stage/pod/fast"; else PST="$M/kwok/stage/pod/general"; fi
      # The chaos stages only act on pods labelled
      # pod-container-running-failed.stage.kwok.x-k8s.io=true (they then end Failed).
      for f in "$PST"/*.yaml "$M"/kwok/stage/pod/chaos/*.yaml; do
        case $(basename "$f") in kustomization.yaml) continue ;; esac
        echo "---"; cat "$f"
      done
    } > "$KW"
    # A default log for every pod; tests can override per pod with a kwok Logs object.
    ts=$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)
    printf '%s stdout F %s\n' "$ts" "kwok fake container log (file: kwok/logs/default.log)" \
      "$ts" "line 2 of the default log" "$ts" "done" > "$RUN_DIR/kwok/logs/default.log"
    start kwok "$K8S_BIN/kwok" --kubeconfig "$KC" --config "$KW" \
      --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
      --node-ip 127.0.0.1 --node-port "$P_KWOK" --server-address "127.0.0.1:$P_KWOK" \
      --cidr 10.244.0.0/16 --node-lease-duration-seconds 40 \
      --enable-crds Logs,ClusterLogs
  fi
fi

# ------------------------------------------------------------------ JobSet and Trainer controllers
if need_bin jobset jobset "$P_JOBSET_WH" "$P_JOBSET_HZ"; then
  if ! ok crds; then status jobset "missing: CRDs not applied"; else
    cat > "$RUN_DIR/etc/jobset.yaml" <<EOF
apiVersion: config.jobset.x-k8s.io/v1alpha1
kind: Configuration
internalCertManagement:
  enable: false
leaderElection:
  leaderElect: false
webhook:
  port: $P_JOBSET_WH
  host: 127.0.0.1
  certDir: $RUN_DIR/jobset-certs
metrics:
  bindAddress: "0"
health:
  healthProbeBindAddress: 127.0.0.1:$P_JOBSET_HZ
EOF
    start jobset "$K8S_BIN/jobset" --kubeconfig "$KC" --config "$RUN_DIR/etc/jobset.yaml" \
      --metrics-bind-address 0 --health-probe-bind-address "127.0.0.1:$P_JOBSET_HZ" --leader-elect=false
  fi
fi
if need_bin trainer trainer-controller-manager "$P_TRAINER_WH" "$P_TRAINER_HZ"; then
  if ! ok crds; then status trainer "missing: CRDs not applied"; else
    cat > "$RUN_DIR/etc/trainer.yaml" <<EOF
apiVersion: config.trainer.kubeflow.org/v1alpha1
kind: Configuration
certManagement:
  enable: false
leaderElection:
  leaderElect: false
webhook:
  port: $P_TRAINER_WH
  host: 127.0.0.1
metrics:
  bindAddress: "0"
health:
  healthProbeBindAddress: 127.0.0.1:$P_TRAINER_HZ
EOF
    # controller-runtime reads the webhook certs from $TMPDIR/k8s-webhook-server/serving-certs.
    TMPDIR="$RUN_DIR/trainer-tmp" start trainer "$K8S_BIN/trainer-controller-manager" \
      --kubeconfig "$KC" --config "$RUN_DIR/etc/trainer.yaml"
  fi
fi

# ------------------------------------------------------------------ readiness of the tier-2 processes
for c in kube-controller-manager:kcm_ready kube-scheduler:sched_ready kwok:kwok_ready jobset:jobset_ready trainer:trainer_ready; do
  name=${c%%:*}; fn=${c#*:}
  [ -f "$RUN_DIR/pids/$name.pid" ] || continue
  if wait_for "$name" "$fn"; then status "$name" ok; else status "$name" "missing: $WHY"; stop_one "$name"; fi
done

# Fake nodes (after kwok is up so it initializes them at once).
if ok kwok && [ -x "$KUBECTL" ]; then
  nodes_json=$("$PY" - "$NODES" <<'EOF'
import json, sys
items = []
for i in range(int(sys.argv[1])):
    name = f"kwok-node-{i}"
    cap = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti", "nvidia.com/gpu": "8"}
    items.append({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                     "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64", "kubernetes.io/role": "agent"}},
        "spec": {},
        "status": {"capacity": cap, "allocatable": cap}})
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
EOF
)
  if out=$(echo "$nodes_json" | kctl create -f - 2>&1) \
     && out=$(kctl wait --for condition=Ready --timeout "${WAIT}s" node -l type=kwok 2>&1); then
    status nodes ok
  else
    status nodes "missing: $(echo "$out" | tail -n1 | cut -c1-200 | tr -d '"\\')"
  fi
  cat <<EOF | kctl apply --server-side -f - >/dev/null 2>&1 || k8s_log "could not create the default ClusterLogs"
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: kft-default-logs
spec:
  logs:
  - logsFile: $RUN_DIR/kwok/logs/default.log
    follow: false
EOF
else
  status nodes "missing: kwok is not running"
fi

# ------------------------------------------------------------------ webhooks (URL-based, caBundle = our CA)
wh_err=""
if ok jobset; then
  kctl apply --server-side --force-conflicts -f <("$PY" "$HELPER" webhooks "$M/jobset/webhook" "$P_JOBSET_WH" "$PKI/ca.crt" jobset-) \
    >/dev/null 2>"$RUN_DIR/logs/webhooks-jobset.err" || wh_err+="jobset: $(tail -n1 "$RUN_DIR/logs/webhooks-jobset.err") "
else wh_err+="jobset webhooks not registered (jobset not running) "; fi
if ok trainer; then
  kctl apply --server-side --force-conflicts -f <("$PY" "$HELPER" webhooks "$M/trainer/base/webhook" "$P_TRAINER_WH" "$PKI/ca.crt") \
    >/dev/null 2>"$RUN_DIR/logs/webhooks-trainer.err" || wh_err+="trainer: $(tail -n1 "$RUN_DIR/logs/webhooks-trainer.err") "
else wh_err+="trainer webhooks not registered (trainer not running) "; fi
if [ -z "$wh_err" ]; then status webhooks ok; else status webhooks "missing: $(echo "$wh_err" | cut -c1-200 | tr -d '"\\')"; fi

# ------------------------------------------------------------------ default runtimes + public configmap
if ok crds; then
  if out=$( { "$PY" "$HELPER" kustomize "$M/trainer/overlays/runtimes" | kctl apply --server-side --force-conflicts -f - ; } 2>&1); then
    status runtimes ok
  else
    status runtimes "missing: $(echo "$out" | tail -n1 | cut -c1-200 | tr -d '"\\')"
  fi
  # What the upstream manager overlay installs next to the controller (the SDK may read it).
  cat <<EOF | kctl apply --server-side -f - >/dev/null 2>&1 || true
apiVersion: v1
kind: Namespace
metadata:
  name: kubeflow-system
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: kubeflow-trainer-public
  namespace: kubeflow-system
data:
  kubeflow_trainer_version: v$TRAINER_VERSION
EOF
else
  status runtimes "missing: CRDs not applied"
fi

# Environment file for shells and tests.
cat > "$RUN_DIR/env" <<EOF
export KUBECONFIG=$KC
export KFT_K8S_RUN_DIR=$RUN_DIR
export PATH=$K8S_BIN:\$PATH
EOF
PHASE=up write_status_json
k8s_log "control plane up in $((SECONDS - T0))s; status: $RUN_DIR/components.json"
grep -H . "$ST"/* | sed "s|$ST/||" >&2
echo "KUBECONFIG=$KC"
exit 0
}
main "$@"; exit $?
