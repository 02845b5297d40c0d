#!/usr/bin/env bash
# Build the real-kubelet tier into a versioned cache next to the control plane's:
# kubelet (same k8s.io/kubernetes version and wrapper module as build.sh), the CNI
# plugins bridge/host-local/loopback, CoreDNS (a wrapper main with few plugins) and
# a local pause image archive. Runs build.sh first (the tier needs the plane).
# containerd comes from Debian's archive (`apt-get install containerd`); it is checked,
# not built. Idempotent: what is in the cache is skipped.
#
#   scripts/k8s/node-build.sh [component...]   components: plane kubelet cni coredns pause containerd
#                                                initializers (no argument = all). Prints the bin dir at the end.
# initializers: the Trainer's dataset and model initializer images, built into Docker from the Python
# initializers in the github.com/kubeflow/trainer/v2 module source (pkg/initializers; uv.lock's versions
# from PyPI) on the slim test image (scripts/containers/build-test-image.sh), under the names the runtimes
# use (ghcr.io/kubeflow/trainer/{dataset,model}-initializer:v<trainer>); node-up.sh imports them.
# Exit status: 0 if every requested component is present, 1 otherwise (failures are
# listed in $NODE_HOME/build-status).
set -uo pipefail
. "$(dirname "$0")/common.sh"

ALL="plane containerd kubelet cni coredns pause initializers"
JOBS=${KFT_K8S_BUILD_JOBS:-2}
LDS='-s -w'
FAILED=0
mkdir -p "$NODE_BIN/cni" "$K8S_WORK/logs"
STATUS="$NODE_HOME/build-status"; touch "$STATUS"
PAUSE_IMAGE="localhost/kubeflow-trainer-test/pause:kft-1"

set_status() {  # name status...
  local n=$1; shift
  { grep -v "^$n " "$STATUS" 2>/dev/null; echo "$n $*"; } > "$STATUS.tmp" && mv "$STATUS.tmp" "$STATUS"
}
run_step() {  # NAME CMD...: run with timing and a log file; record the outcome
  local n=$1; shift
  local log="$K8S_WORK/logs/node-build-$n.log" t0=$SECONDS rc
  k8s_log "building $n (log: $log)"
  ( set -e; "$@" ) >"$log" 2>&1; rc=$?
  local dt=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then
    k8s_log "built $n in ${dt}s"; set_status "$n" "ok built-in ${dt}s"
  else
    k8s_log "FAILED $n after ${dt}s (rc=$rc); last lines of $log:"; tail -n 15 "$log" >&2
    set_status "$n" "failed: $( (grep -E '403 Forbidden|not available|unknown revision|cannot find|undefined:|[Ee]rror:|signal: killed' "$log" || tail -n1 "$log") | tail -n1 | sed 's/^[[:space:]]*//' | cut -c1-200)"
    FAILED=$((FAILED + 1))
  fi
  return $rc
}

# ---------------------------------------------------------------- kubelet (build.sh's wrapper module)
build_kubelet() {
  local w="$K8S_WORK/wrap-k8s-$K8S_VERSION"
  [ -f "$w/.ready" ] || { echo "error: build.sh's wrapper module $w is missing (build.sh apiserver failed?)"; return 1; }
  cd "$w"
  go get "k8s.io/kubernetes/cmd/kubelet@v$K8S_VERSION"
  local minor v="v$K8S_VERSION" p flags="$LDS"
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  go build -p "$JOBS" -trimpath -ldflags "$flags" -o "$NODE_BIN/.kubelet.tmp" k8s.io/kubernetes/cmd/kubelet
  mv "$NODE_BIN/.kubelet.tmp" "$NODE_BIN/kubelet"
}

# ---------------------------------------------------------------- CNI plugins
build_cni() {
  local w="$K8S_WORK/wrap-cni-$CNI_PLUGINS_VERSION" m=github.com/containernetworking/plugins
  mkdir -p "$w"; cd "$w"
  [ -f go.mod ] || { go mod init local.invalid/cnibin; go mod edit -go=1.26.0; }
  go get "$m/plugins/main/bridge@v$CNI_PLUGINS_VERSION" "$m/plugins/ipam/host-local@v$CNI_PLUGINS_VERSION" \
    "$m/plugins/main/loopback@v$CNI_PLUGINS_VERSION"
  rm -rf "$NODE_BIN/.cni.tmp"; mkdir -p "$NODE_BIN/.cni.tmp"
  go build -p "$JOBS" -trimpath -ldflags "$LDS" -o "$NODE_BIN/.cni.tmp/" \
    "$m/plugins/main/bridge" "$m/plugins/ipam/host-local" "$m/plugins/main/loopback"
  rm -rf "$NODE_BIN/cni"; mv "$NODE_BIN/.cni.tmp" "$NODE_BIN/cni"
}

# ---------------------------------------------------------------- CoreDNS with only the plugins the tier needs
build_coredns() {
  local w="$K8S_WORK/wrap-coredns-$COREDNS_VERSION" m=github.com/coredns/coredns
  mkdir -p "$w"; cd "$w"
  cat > main.go <<'EOF'
// CoreDNS with only the plugins the test node needs (the order is the directive order of plugin.cfg).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{"bind", "ready", "errors", "log", "kubernetes"}
}

func main() { coremain.Run() }
EOF
  [ -f go.mod ] || { go mod init local.invalid/corednsbin; go mod edit -go=1.26.0; }
  # go get of the imported packages only (go mod tidy would fetch every dependency's test modules).
  go get $(for p in core/dnsserver coremain plugin/bind plugin/errors plugin/kubernetes plugin/log plugin/ready; do
    echo "$m/$p@v$COREDNS_VERSION"; done)
  go build -p "$JOBS" -trimpath -ldflags "$LDS" -o "$NODE_BIN/.coredns.tmp" .
  mv "$NODE_BIN/.coredns.tmp" "$NODE_BIN/coredns"
}

# ---------------------------------------------------------------- pause image (a Docker-format archive)
build_pause() {
  local w="$K8S_WORK/pause" tar="$NODE_HOME/pause-image.tar"
  mkdir -p "$w"; cd "$w"
  cat > main.go <<'EOF'
// The pod sandbox's process: sleeps until SIGINT/SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
	<-c
}
EOF
  [ -f go.mod ] || { go mod init local.invalid/pause; go mod edit -go=1.26.0; }
  go build -trimpath -ldflags "$LDS" -o pause .
  python3 - "$w/pause" "$tar.tmp" "$PAUSE_IMAGE" <<'EOF'
import hashlib, io, json, sys, tarfile

binary, out, ref = sys.argv[1:]
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
    info = t.gettarinfo(binary, arcname="pause")
    info.uid = info.gid = 0; info.uname = info.gname = ""; info.mtime = 0; info.mode = 0o755
    with open(binary, "rb") as f:
        t.addfile(info, f)
layer_bytes = layer.getvalue()
diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux",
                     "config": {"Entrypoint": ["/pause"]},
                     "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
config_name = hashlib.sha256(config).hexdigest() + ".json"
manifest = json.dumps([{"Config": config_name, "RepoTags": [ref], "Layers": ["layer/layer.tar"]}]).encode()
with tarfile.open(out, "w") as t:
    for name, data in ((config_name, config), ("layer/layer.tar", layer_bytes), ("manifest.json", manifest)):
        info = tarfile.TarInfo(name); info.size = len(data); info.mode = 0o644
        t.addfile(info, io.BytesIO(data))
EOF
  echo "$PAUSE_IMAGE" > "$NODE_HOME/pause-image.ref"
  mv "$tar.tmp" "$tar"
}

# ---------------------------------------------------------------- Trainer initializer images (Docker)
SLIM_IMAGE=${KFT_SLIM_IMAGE:-localhost/kubeflow-trainer-test/python:slim}
INIT_LABEL=org.kubeflow.trainer-test.key
initializer_image() { echo "ghcr.io/kubeflow/trainer/$1-initializer:v$TRAINER_VERSION"; }
initializers_key() {  # what the images are made of: this script, the module version, the base image id
  { sha256sum "$0" | cut -c1-64; echo "$TRAINER_VERSION"; docker image inspect -f '{{.Id}}' "$SLIM_IMAGE" 2>/dev/null; } | sha256sum | cut -c1-16
}
initializers_built() {
  local key kind; key=$(initializers_key)
  for kind in dataset model; do
    [ "$(docker image inspect -f "{{index .Config.Labels \"$INIT_LABEL\"}}" "$(initializer_image $kind)" 2>/dev/null)" = "$key" ] || return 1
  done
}
build_initializers() {
  docker info >/dev/null 2>&1 || { echo "error: the Docker engine does not answer (scripts/containers/setup-engines.sh docker)"; return 1; }
  docker image inspect "$SLIM_IMAGE" >/dev/null 2>&1 || { echo "error: no $SLIM_IMAGE in Docker: run scripts/containers/build-test-image.sh docker"; return 1; }
  local src key kind ctx
  src=$(cd "$K8S_WORK" && go mod download -json "github.com/kubeflow/trainer/v2@v$TRAINER_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  [ -n "$src" ] && [ -d "$src/pkg/initializers" ] || { echo "error: no pkg/initializers in the trainer module ($src)"; return 1; }
  key=$(initializers_key)
  for kind in dataset model; do
    ctx="$K8S_WORK/initializer-$kind"; rm -rf "$ctx"; mkdir -p "$ctx/pkg"
    cp -r "$src/pkg/initializers" "$ctx/pkg/" && chmod -R u+w "$ctx"
    find "$ctx/pkg" -name '*_test.py' -delete
    python3 -c '
import sys, tomllib
for p in tomllib.load(open(sys.argv[1], "rb"))["package"]:
    if "registry" in p.get("source", {}):
        print(p["name"] + "==" + p["version"])
' "$src/cmd/initializers/$kind/uv.lock" > "$ctx/requirements.txt"
    printf '%s\n' \
      "# The Trainer's $kind initializer (github.com/kubeflow/trainer/v2@v$TRAINER_VERSION cmd/initializers/$kind):" \
      "# its Python package and uv.lock's versions, on the local slim test image (upstream: python:3.14-slim-bookworm)." \
      "FROM $SLIM_IMAGE" "WORKDIR /app" "COPY requirements.txt ." \
      "RUN python3 -m pip install --no-cache-dir --disable-pip-version-check -r requirements.txt" \
      "COPY pkg pkg" "LABEL $INIT_LABEL=$key" \
      "ENTRYPOINT [\"python3\", \"-m\", \"pkg.initializers.$kind\"]" > "$ctx/Dockerfile"
    docker build -q -t "$(initializer_image $kind)" "$ctx"
  done
}

# ---------------------------------------------------------------- containerd (Debian's package, checked)
check_containerd() {
  local have
  command -v containerd >/dev/null && command -v ctr >/dev/null && command -v runc >/dev/null \
    || { echo "error: containerd, ctr and runc are needed: apt-get install containerd"; return 1; }
  have=$(containerd --version | awk '{print $3}')
  case $have in
    "$CONTAINERD_VERSION"|"$CONTAINERD_VERSION"~*|"$CONTAINERD_VERSION"-*) ;;
    *) echo "error: containerd $have is installed, versions.env pins $CONTAINERD_VERSION (kubelet $K8S_VERSION needs containerd 1.x)"; return 1 ;;
  esac
  echo "containerd $have"
}

plane_lock() {
  exec 7>"$K8S_CACHE_ROOT/.build.lock"
  flock -n 7 || { k8s_log "build.sh holds $K8S_CACHE_ROOT/.build.lock; waiting"; flock 7; }
}

main() {
  local WANT=${*:-$ALL} c
  command -v go >/dev/null || { k8s_log "go is not on PATH"; echo "toolchain failed: go not on PATH" > "$STATUS"; return 1; }
  case " $WANT " in *" plane "*) bash "$K8S_SCRIPTS_DIR/build.sh" >/dev/null || FAILED=$((FAILED + 1)) ;; esac
  # One node build at a time; the kubelet step also takes build.sh's lock (it shares its wrapper module).
  exec 9>"$NODE_HOME/.build.lock"
  flock -n 9 || { k8s_log "another node-build.sh holds $NODE_HOME/.build.lock; waiting"; flock 9; }
  T_ALL=$SECONDS
  for c in $WANT; do
    case $c in
      plane) ;;
      containerd) run_step containerd check_containerd ;;
      kubelet) [ -x "$NODE_BIN/kubelet" ] || { plane_lock; run_step kubelet build_kubelet; } ;;
      cni) [ -x "$NODE_BIN/cni/bridge" ] || run_step cni build_cni ;;
      coredns) [ -x "$NODE_BIN/coredns" ] || run_step coredns build_coredns ;;
      pause) [ -s "$NODE_HOME/pause-image.tar" ] || run_step pause build_pause ;;
      initializers) initializers_built || run_step initializers build_initializers ;;
      *) k8s_log "unknown component $c"; FAILED=$((FAILED + 1)) ;;
    esac
  done
  k8s_log "node build done in $((SECONDS - T_ALL))s, $FAILED failure(s); bin dir: $NODE_BIN"
  echo "$NODE_BIN"
  [ $FAILED -eq 0 ]
}
main "$@"; exit $?
