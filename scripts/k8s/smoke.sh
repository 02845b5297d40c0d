#!/usr/bin/env bash
# End-to-end check of a running control plane (after up.sh), with kubectl and curl:
#   invalid TrainJobs are refused; a torch-distributed TrainJob flows
#   TrainJob -> JobSet -> Job -> Pods (KWOK) -> Succeeded -> Complete; pod logs are
#   served through the apiserver; events exist; delete cascades; a TrainJob whose
#   pods carry the KWOK chaos label ends Failed; a namespace deletes cleanly.
#   scripts/k8s/smoke.sh       exit 0 if every check passed
set -uo pipefail
. "$(dirname "$0")/common.sh"
[ -f "$RUN_DIR/components.json" ] || { echo "no control plane in $RUN_DIR (run up.sh)"; exit 2; }
export KUBECONFIG="$RUN_DIR/kubeconfig"
K="$K8S_BIN/kubectl"
PKI="$RUN_DIR/pki"
API=$(sed -n 's/^ *server: //p' "$KUBECONFIG")
NS=kft-smoke-$$
PASS=0; FAIL=0
pass() { PASS=$((PASS + 1)); echo "PASS $*"; }
fail() { FAIL=$((FAIL + 1)); echo "FAIL $*"; }
post() {  # path json -> "<http code> <message>"
  curl -sS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    -H 'Content-Type: application/json' -X POST --data "$2" -o /tmp/kft-smoke-$$.out -w '%{http_code}' "$API$1"
  printf ' '; python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("message","")[:220])' /tmp/kft-smoke-$$.out
}
cond() { "$K" -n "$NS" get trainjob "$1" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {end}' 2>/dev/null; }

python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [print(f"  {k:26s} {v}") for k,v in sorted(d["components"].items())]' "$RUN_DIR/components.json"
comp() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["components"].get(sys.argv[2],"missing"))' "$RUN_DIR/components.json" "$1"; }
CHAIN=1
for c in kube-controller-manager kube-scheduler kwok nodes jobset trainer webhooks runtimes; do
  [ "$(comp "$c")" = ok ] || { CHAIN=0; echo "SKIP chain checks: $c is '$(comp "$c")'"; }
done
"$K" create namespace "$NS" >/dev/null

TJ='/apis/trainer.kubeflow.org/v1alpha1/namespaces/'$NS'/trainjobs'
r=$(post "$TJ" '{"apiVersion":"trainer.kubeflow.org/v1alpha1","kind":"TrainJob","metadata":{"name":"bad-nodes"},"spec":{"runtimeRef":{"name":"torch-distributed"},"trainer":{"numNodes":"abc"}}}')
case $r in 4*) pass "numNodes=\"abc\" refused: $r" ;; *) fail "numNodes=\"abc\" accepted: $r" ;; esac
r=$(post "$TJ" '{"apiVersion":"trainer.kubeflow.org/v1alpha1","kind":"TrainJob","metadata":{"name":"bad-noref"},"spec":{"trainer":{"numNodes":2}}}')
case $r in 422*runtimeRef*) pass "missing runtimeRef refused: $r" ;; *) fail "missing runtimeRef: $r" ;; esac
[ "$(comp trainer)" = ok ] && r=$(post "$TJ" '{"apiVersion":"trainer.kubeflow.org/v1alpha1","kind":"TrainJob","metadata":{"name":"bad-runtime"},"spec":{"runtimeRef":{"name":"no-such-runtime"}}}')
[ "$(comp trainer)" = ok ] && case $r in 4*) pass "unknown runtime refused: $r" ;; *) fail "unknown runtime accepted (trainer webhook not registered?): $r" ;; esac

# --------------------------------------------------------------- happy path
if [ $CHAIN = 1 ]; then
t0=$SECONDS
cat <<EOF | "$K" create -f - >/dev/null
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: ok, namespace: $NS}
spec:
  runtimeRef: {name: torch-distributed}
  trainer:
    numNodes: 2
    command: ["python", "-c", "print('hello from the smoke test')"]
EOF
phases=""
for _ in $(seq 240); do
  p=$("$K" -n "$NS" get pods -l jobset.sigs.k8s.io/jobset-name=ok -o jsonpath='{range .items[*]}{.status.phase} {end}' 2>/dev/null)
  for ph in $p; do case " $phases " in *" $ph "*) ;; *) phases="$phases $ph" ;; esac; done
  case $(cond ok) in *Complete=True*|*Failed=True*) break ;; esac
  sleep 0.5
done
c=$(cond ok)
case $c in *Complete=True*) pass "TrainJob ok Complete after $((SECONDS - t0))s (pod phases seen:$phases)" ;; *) fail "TrainJob ok not Complete after $((SECONDS - t0))s: '$c' (phases:$phases)" ;; esac
js=$("$K" -n "$NS" get jobset ok -o jsonpath='{.metadata.ownerReferences[0].kind}' 2>/dev/null)
[ "$js" = TrainJob ] && pass "JobSet ok owned by the TrainJob" || fail "JobSet ok missing or not owned by TrainJob ($js)"
nj=$("$K" -n "$NS" get jobs -l jobset.sigs.k8s.io/jobset-name=ok --no-headers 2>/dev/null | wc -l)
np=$("$K" -n "$NS" get pods -l jobset.sigs.k8s.io/jobset-name=ok --field-selector status.phase=Succeeded --no-headers 2>/dev/null | wc -l)
[ "$nj" -ge 1 ] && [ "$np" = 2 ] && pass "$nj Job(s), $np pods Succeeded" || fail "jobs=$nj succeeded pods=$np"
pod=$("$K" -n "$NS" get pods -l jobset.sigs.k8s.io/jobset-name=ok,batch.kubernetes.io/job-completion-index=0 -o name | head -1)
log=$("$K" -n "$NS" logs "$pod" 2>&1)
[ -n "$log" ] && case $log in *rror*) false ;; esac && pass "logs of $pod via apiserver: $(echo "$log" | head -1)" || fail "logs of $pod: $log"
ev=$("$K" -n "$NS" get events --no-headers 2>/dev/null | wc -l)
[ "$ev" -gt 0 ] && pass "$ev events in $NS" || fail "no events in $NS"
t0=$SECONDS
"$K" -n "$NS" delete trainjob ok --wait=true >/dev/null
for _ in $(seq 120); do
  n=$("$K" -n "$NS" get jobsets,jobs,pods --no-headers 2>/dev/null | wc -l); [ "$n" = 0 ] && break; sleep 0.5
done
[ "$n" = 0 ] && pass "delete cascaded to JobSet/Jobs/Pods in $((SECONDS - t0))s" || fail "after delete $n objects remain"

# --------------------------------------------------------------- failure path (KWOK chaos stage)
# A namespaced TrainingRuntime whose pods carry the KWOK chaos label (the pod ends
# Failed) and whose Job has backoffLimit 0 (else the Job retries with 10 s, 20 s, ... backoff).
t0=$SECONDS
cat <<EOF | "$K" create -f - >/dev/null
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainingRuntime
metadata: {name: torch-fail-fast, namespace: $NS, labels: {trainer.kubeflow.org/framework: torch}}
spec:
  mlPolicy: {numNodes: 1, torch: {}}
  template:
    spec:
      replicatedJobs:
      - name: node
        template:
          metadata:
            labels: {trainer.kubeflow.org/trainjob-ancestor-step: trainer}
          spec:
            backoffLimit: 0
            template:
              metadata:
                labels: {pod-container-running-failed.stage.kwok.x-k8s.io: "true"}
              spec:
                containers:
                - name: node
                  image: pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime
---
apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: fails, namespace: $NS}
spec:
  runtimeRef: {name: torch-fail-fast, kind: TrainingRuntime}
  trainer: {numNodes: 2, command: ["false"]}
EOF
for _ in $(seq 240); do case $(cond fails) in *Complete=True*|*Failed=True*) break ;; esac; sleep 0.5; done
c=$(cond fails)
case $c in *Failed=True*) pass "TrainJob fails Failed after $((SECONDS - t0))s: $("$K" -n "$NS" get trainjob fails -o jsonpath='{.status.conditions[?(@.type=="Failed")].message}')" ;; *) fail "TrainJob fails: '$c'" ;; esac

fi  # CHAIN

# --------------------------------------------------------------- namespace deletion
t0=$SECONDS
"$K" delete namespace "$NS" --wait=true --timeout=120s >/dev/null 2>&1 && pass "namespace deleted in $((SECONDS - t0))s" || fail "namespace $NS not deleted"
rm -f /tmp/kft-smoke-$$.out
echo "smoke: $PASS checks passed, $FAIL failed"
[ "$FAIL" = 0 ]
