#!/usr/bin/env bash
# Build the local control-plane binaries from pinned Go module versions into a
# versioned cache outside the repo, and extract the manifests (CRDs, runtimes,
# webhooks, KWOK stages). Idempotent: whatever is already in the cache is skipped.
#
#   scripts/k8s/build.sh [component...]   components: etcd apiserver kcm scheduler
#                                          kubectl jobset trainer kwok manifests
#   (no argument = all). Prints the bin dir at the end.
# Exit status: 0 if every requested component is present, 1 otherwise (the
# components that did build are kept; failures are listed in $K8S_HOME/build-status).
set -uo pipefail
. "$(dirname "$0")/common.sh"

ALL="manifests etcd apiserver kcm scheduler kubectl kwok jobset trainer"
JOBS=${KFT_K8S_BUILD_JOBS:-2}
mkdir -p "$K8S_BIN" "$K8S_MANIFESTS" "$K8S_WORK/logs"
STATUS="$K8S_HOME/build-status"; touch "$STATUS"
LDS='-s -w'
MANIFESTS_LAYOUT=2   # bump when build_manifests changes what it extracts
FAILED=0

set_status() {  # name status...
  local n=$1; shift
  { grep -v "^$n " "$STATUS" 2>/dev/null; echo "$n $*"; } > "$STATUS.tmp" && mv "$STATUS.tmp" "$STATUS"
}

# run_step NAME CMD... : run with timing and a log file; record the outcome.
run_step() {
  local n=$1; shift
  local log="$K8S_WORK/logs/build-$n.log" t0=$SECONDS rc
  k8s_log "building $n (log: $log)"
  ( set -e; "$@" ) >"$log" 2>&1; rc=$?
  local dt=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then
    k8s_log "built $n in ${dt}s"; set_status "$n" "ok built-in ${dt}s"
  else
    k8s_log "FAILED $n after ${dt}s (rc=$rc); last lines of $log:"; tail -n 15 "$log" >&2
    set_status "$n" "failed: $( (grep -E '403 Forbidden|not available|unknown revision|cannot find|undefined:|no required module|invalid version|[Ee]rror:|signal: killed|go: .* requires go' "$log" || tail -n1 "$log") | tail -n1 | sed 's/^[[:space:]]*//' | cut -c1-200)"
    FAILED=$((FAILED + 1))
  fi
  return $rc
}

have() { [ -x "$K8S_BIN/$1" ]; }

moddir() {  # module@version -> Dir in the module cache (downloads it)
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

# ---------------------------------------------------------------- etcd
build_etcd() {
  local w="$K8S_WORK/wrap-etcd-$ETCD_VERSION"; mkdir -p "$w"; cd "$w"
  [ -f go.mod ] || { go mod init local.invalid/etcdbin; go mod edit -go=1.25.0; }
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  go build -p "$JOBS" -trimpath -ldflags "$LDS" -o "$K8S_BIN/.etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$K8S_BIN/.etcd.tmp" "$K8S_BIN/etcd"
}

# ---------------------------------------------------------------- kubernetes
k8s_wrapper() {
  local w="$K8S_WORK/wrap-k8s-$K8S_VERSION"; mkdir -p "$w"; cd "$w"
  if [ ! -f .ready ]; then
    rm -f go.mod go.sum
    go mod init local.invalid/k8sbins; go mod edit -go=1.25.0
    local stg="v0.${K8S_VERSION#1.}" gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    # Derive the staging replace list from upstream's go.mod (every k8s.io/* at v0.0.0).
    for m in $(grep -E '^[[:space:]]+k8s\.io/[a-z0-9-]+ v0\.0\.0[[:space:]]*$' "$gomod" | awk '{print $1}'); do
      go mod edit -replace="$m=$m@$stg"
    done
    go get $(for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do echo "k8s.io/kubernetes/cmd/$c@v$K8S_VERSION"; done)
    touch .ready
  fi
}
k8s_ldflags() {
  local minor; minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  local v="v$K8S_VERSION" p
  echo -n "$LDS"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    echo -n " -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
}
build_k8s_cmd() {  # binary name == cmd dir name
  k8s_wrapper
  go build -p "$JOBS" -trimpath -ldflags "$(k8s_ldflags)" -o "$K8S_BIN/.$1.tmp" "k8s.io/kubernetes/cmd/$1"
  mv "$K8S_BIN/.$1.tmp" "$K8S_BIN/$1"
}

# ---------------------------------------------------------------- go install style
build_install() {  # binname pkg@version
  local tmp="$K8S_BIN/.gobin-$1"; rm -rf "$tmp"; mkdir -p "$tmp"
  cd "$K8S_WORK"
  GOBIN="$tmp" go install -p "$JOBS" -trimpath -ldflags "$LDS" "$2"
  mv "$tmp/$(basename "${2%@*}")" "$K8S_BIN/$1"; rm -rf "$tmp"
}

# Wrapper-module build for modules whose version list the proxy refuses: `go install
# pkg@version` reads that list (deprecation notice) and fails; `go get` in a wrapper
# module does not need it. The selected versions are those of the module's own go.mod.
build_wrapped() {  # binname module version pkg
  local w="$K8S_WORK/wrap-$1-$3"; mkdir -p "$w"; cd "$w"
  [ -f go.mod ] || { go mod init "local.invalid/$1bin"; go mod edit -go=1.26.0; }
  go get "$2@$3"
  go build -p "$JOBS" -trimpath -ldflags "$LDS" -o "$K8S_BIN/.$1.tmp" "$4"
  mv "$K8S_BIN/.$1.tmp" "$K8S_BIN/$1"
}

# ---------------------------------------------------------------- manifests
build_manifests() {
  local tr js kw m="$K8S_MANIFESTS"
  tr=$(moddir "github.com/kubeflow/trainer/v2@v$TRAINER_VERSION")
  js=$(moddir "sigs.k8s.io/jobset@v$JOBSET_VERSION")
  kw=$(moddir "sigs.k8s.io/kwok@v$KWOK_VERSION")
  rm -rf "$m.tmp"; mkdir -p "$m.tmp"/{trainer/base,trainer/overlays,jobset,kwok}
  # Keep upstream's layout so the kustomizations' relative paths still resolve.
  cp -r "$tr/manifests/base/crds" "$tr/manifests/base/runtimes" "$tr/manifests/base/webhook" "$m.tmp/trainer/base/"
  cp -r "$tr/manifests/overlays/runtimes" "$m.tmp/trainer/overlays/runtimes"
  cp "$tr/manifests/base/manager/controller_manager_config.yaml" "$m.tmp/trainer/"
  mkdir -p "$m.tmp/jobset/crd"
  cp "$js/config/components/crd/bases/"*.yaml "$m.tmp/jobset/crd/"
  cp -r "$js/config/components/webhook" "$m.tmp/jobset/webhook"
  cp -r "$kw/kustomize/stage" "$kw/kustomize/crd" "$m.tmp/kwok/"
  chmod -R u+w "$m.tmp"
  echo "$MANIFESTS_LAYOUT" > "$m.tmp/.complete"
  rm -rf "$m"; mv "$m.tmp" "$m"
}

# Everything runs inside main (bash then has parsed the whole file before it starts).
main() {
  local WANT=${*:-$ALL} c
  command -v go >/dev/null || { k8s_log "go is not on PATH"; echo "toolchain failed: go not on PATH" > "$STATUS"; return 1; }
  # One build at a time per cache (a second caller waits, then finds the binaries).
  exec 9>"$K8S_CACHE_ROOT/.build.lock"
  flock -n 9 || { k8s_log "another build.sh holds $K8S_CACHE_ROOT/.build.lock; waiting"; flock 9; }
  T_ALL=$SECONDS
  for c in $WANT; do
    case $c in
      manifests) [ "$(cat "$K8S_MANIFESTS/.complete" 2>/dev/null)" = "$MANIFESTS_LAYOUT" ] || run_step manifests build_manifests ;;
      etcd)      have etcd || run_step etcd build_etcd ;;
      apiserver) have kube-apiserver || run_step kube-apiserver build_k8s_cmd kube-apiserver ;;
      kcm)       have kube-controller-manager || run_step kube-controller-manager build_k8s_cmd kube-controller-manager ;;
      scheduler) have kube-scheduler || run_step kube-scheduler build_k8s_cmd kube-scheduler ;;
      kubectl)   have kubectl || run_step kubectl build_k8s_cmd kubectl ;;
      kwok)      have kwok || run_step kwok build_install kwok "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" ;;
      jobset)    have jobset || run_step jobset build_wrapped jobset sigs.k8s.io/jobset "v$JOBSET_VERSION" sigs.k8s.io/jobset ;;
      trainer)   have trainer-controller-manager || run_step trainer-controller-manager build_install trainer-controller-manager "github.com/kubeflow/trainer/v2/cmd/trainer-controller-manager@v$TRAINER_VERSION" ;;
      *) k8s_log "unknown component $c"; FAILED=$((FAILED + 1)) ;;
    esac
  done
  k8s_log "build done in $((SECONDS - T_ALL))s, $FAILED failure(s); bin dir: $K8S_BIN"
  echo "$K8S_BIN"
  [ $FAILED -eq 0 ]
}
main "$@"; exit $?
