#!/usr/bin/env bash
# End-to-end check of an engine with the torch test image.
#
#   scripts/containers/verify-engines.sh [docker|podman|all]      (default: all)
#
# Per engine: a 2-node torchrun (gloo all_reduce) across two containers on a user-defined
# network (peers found by container name), then `pip install iniconfig` (not in the image) in a container (PyPI
# through the baked-in CA), also in the slim image when it exists. Everything it creates (containers kft-verify-*, network
# kft-verify-net) is removed on exit. Needs setup-engines.sh and build-test-image.sh first.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

kft_cli "$@"
IMG=$KFT_TORCH_IMAGE
NET=kft-verify-net
NAMES=(kft-verify-node0 kft-verify-node1 kft-verify-pip)
ENGINE=

cleanup() {
  [ -n "$ENGINE" ] || return 0
  local n
  for n in "${NAMES[@]}"; do kft_engine_cli "$ENGINE" rm -f "$n" >/dev/null 2>&1 || true; done  # one name at a time (podman)
  kft_engine_cli "$ENGINE" network rm "$NET" >/dev/null 2>&1 || true
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

verify() {
  ENGINE=$1
  local e=$1 r t0 rc0 rc1 out
  kft_engine_cli "$e" image inspect "$IMG" >/dev/null 2>&1 || die "$e: image $IMG missing; run scripts/containers/build-test-image.sh $e"
  cleanup
  out=$(kft_engine_cli "$e" network create "$NET" 2>&1) || { printf '%s\n' "$out" >&2; die "$e: network create failed"; }
  t0=$(now)
  for r in 0 1; do
    kft_engine_cli "$e" run -d --name "kft-verify-node$r" --hostname "kft-verify-node$r" --network "$NET" \
      -v "$HERE/ddp_check.py:/work/ddp_check.py:ro" "$IMG" \
      timeout 120 torchrun --nnodes=2 --nproc-per-node=1 --node-rank=$r \
        --master-addr=kft-verify-node0 --master-port=29500 --rdzv-conf=timeout=60 ddp_check.py \
      2>&1 >/dev/null | grep -v 'failed to connect to syslog' >&2 || true   # podman 4.3 noise (aardvark-dns)
    kft_engine_cli "$e" container inspect "kft-verify-node$r" >/dev/null 2>&1 || die "$e: could not start kft-verify-node$r"
  done
  rc0=$(kft_engine_cli "$e" wait kft-verify-node0); rc1=$(kft_engine_cli "$e" wait kft-verify-node1)
  local t_ddp; t_ddp=$(secs "$t0" "$(now)")
  for r in 0 1; do kft_engine_cli "$e" logs "kft-verify-node$r" 2>&1 | grep -E 'host=|Error|error' | sed "s/^/[$e node$r] /" >&2 || true; done
  [ "$rc0" = 0 ] && [ "$rc1" = 0 ] || die "$e: 2-node torchrun failed (exit codes $rc0 $rc1)"
  log "$e: 2-node torchrun gloo all_reduce ok in ${t_ddp} s (first run -> both exited)"

  t0=$(now)
  out=$(kft_engine_cli "$e" run --rm --name kft-verify-pip "$IMG" sh -c \
    'pip install -q iniconfig && python3 -c "import iniconfig, torch; print(\"iniconfig from\", iniconfig.__file__, \"torch\", torch.__version__)"' 2>&1) \
    || { printf '%s\n' "$out" >&2; die "$e: pip install iniconfig failed"; }
  printf '%s\n' "$out" | grep -q 'from /opt/venv/' || { printf '%s\n' "$out" >&2; die "$e: iniconfig not installed into /opt/venv"; }
  log "$e: pip install iniconfig ok in $(secs "$t0" "$(now)") s: $(printf '%s\n' "$out" | tail -n 1)"

  if kft_engine_cli "$e" image inspect "$KFT_SLIM_IMAGE" >/dev/null 2>&1; then
    t0=$(now)
    out=$(kft_engine_cli "$e" run --rm --name kft-verify-pip "$KFT_SLIM_IMAGE" sh -c \
      'pip install -q six && python3 -c "import six; print(\"six\", six.__version__, \"from\", six.__file__)"' 2>&1) \
      || { printf '%s\n' "$out" >&2; die "$e: pip install six in $KFT_SLIM_IMAGE failed"; }
    log "$e: $KFT_SLIM_IMAGE: pip install six ok in $(secs "$t0" "$(now)") s"
  fi
  cleanup
}

for e in $ENGINES; do
  case $e in
    docker) docker info >/dev/null 2>&1 || die "docker does not answer; run scripts/containers/setup-engines.sh" ;;
    podman) [ -f "$KFT_CONTAINERS_CONF" ] || die "missing $KFT_CONTAINERS_CONF; run scripts/containers/setup-engines.sh" ;;
  esac
  verify "$e"
done
ENGINE=
log "ok: $ENGINES"
