#!/usr/bin/env bash
# Check that the Go module proxy serves every pinned module version (and list the
# versions it advertises). Run before build.sh on a new machine.
#   scripts/k8s/probe.sh      exit 0 if all pinned versions download
set -uo pipefail
. "$(dirname "$0")/common.sh"
go version; echo "GOPROXY=$(go env GOPROXY) GOFLAGS=$(go env GOFLAGS) GOTOOLCHAIN=$GOTOOLCHAIN"
tmp=$(mktemp -d); trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT; cd "$tmp"
fail=0
for mv in "k8s.io/kubernetes@v$K8S_VERSION" "k8s.io/api@v0.${K8S_VERSION#1.}" \
          "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" \
          "github.com/kubeflow/trainer/v2@v$TRAINER_VERSION" \
          "sigs.k8s.io/jobset@v$JOBSET_VERSION" "sigs.k8s.io/kwok@v$KWOK_VERSION"; do
  m=${mv%@*}
  if lout=$(go list -m -versions "$m" 2>&1); then
    list=$(tr ' ' '\n' <<<"$lout" | tail -n +2 | tail -8 | tr '\n' ' ')
  else
    list="<list refused: $(grep -oE '[0-9]{3} [A-Za-z ]+' <<<"$lout" | head -1)>"
  fi
  t0=$SECONDS
  # Ask the proxy itself (empty module cache) for the version's .info, then download the
  # zip into the normal module cache (instant when build.sh already fetched it).
  if ! info=$(GOMODCACHE="$tmp/modcache" GOFLAGS=-mod=mod go list -m -json "$mv" 2>&1) || grep -q '"Error"' <<<"$info"; then
    printf 'FAIL  %-50s proxy: %s\n' "$mv" "$(grep -m1 -E 'Error|error|403|404' <<<"$info")"; fail=1; continue
  fi
  if out=$(go mod download -json "$mv" 2>&1) && ! grep -q '"Error"' <<<"$out"; then
    printf 'OK    %-50s (%ss)  proxy list tail: %s\n' "$mv" $((SECONDS - t0)) "${list:-<none/refused>}"
  else
    printf 'FAIL  %-50s %s\n' "$mv" "$(grep -m1 -E 'Error|error|403|404' <<<"$out")"; fail=1
  fi
done
# Trainer v2.3.0 dependencies the desk study flagged (pre-release / pseudo-versions).
trmod=$(go mod download -json "github.com/kubeflow/trainer/v2@v$TRAINER_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
for dep in sigs.k8s.io/scheduler-plugins volcano.sh/apis sigs.k8s.io/jobset; do
  v=$(awk -v d="$dep" '$1==d {print $2; exit}' "$trmod")
  [ -n "$v" ] || continue
  if go mod download "$dep@$v" 2>/dev/null; then echo "OK    $dep@$v (trainer dependency)"; else echo "FAIL  $dep@$v (trainer dependency)"; fail=1; fi
done
exit $fail
