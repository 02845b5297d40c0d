#!/usr/bin/env bash
# Build the local test images for docker and/or podman, with no container registry.
#
#   scripts/containers/build-test-image.sh [docker|podman|all]     (default: all)
#
# Images (the same names work in docker and podman):
#   torch: localhost/kubeflow-trainer-test/torch:cpu   Debian trixie, python3 + Debian's CPU
#          python3-torch + numpy, venv /opt/venv (--system-site-packages, first on PATH, so
#          `pip install` at job start goes into the venv and sees torch), torchrun on PATH;
#          plus boto3 (Debian) and huggingface_hub (pinned, from PyPI into the venv: trixie
#          has no python3-huggingface-hub) for the dataset/model initializer tests.
#   slim:  localhost/kubeflow-trainer-test/python:slim  same base and venv without torch
#          (130 MB, about 25 s cold), for tests that need Python but not torch; no boto3
#          and no huggingface_hub.
#
# Route: mmdebstrap -> rootfs tarball (cached by content key) -> `docker import` and
# `podman import` of the same tarball. The host's extra CA certificates
# (/usr/local/share/ca-certificates) are baked in so pip can reach PyPI through the proxy.
# An image whose label org.kubeflow.trainer-test.key equals the current key is not rebuilt.
#
# Env: KFT_BUILD_IMAGES  images to build: "torch slim" (default), "torch" or "slim"
#      KFT_IMAGE_SUITE   Debian suite (default trixie)
#      KFT_FORCE_REBUILD=1  ignore the cache (tarball and images)
#      KFT_CACHE_DIR, KFT_STATE_DIR, KFT_TORCH_IMAGE, KFT_SLIM_IMAGE (see common.sh)
# stdout: the names of the images, the torch image on the last line. Progress: stderr.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$HERE/common.sh"

kft_cli "$@"
BUILD_IMAGES=${KFT_BUILD_IMAGES:-torch slim}
SUITE=${KFT_IMAGE_SUITE:-trixie}
FORCE=${KFT_FORCE_REBUILD:-0}
LABEL_KEY=org.kubeflow.trainer-test.key
CA_DIR=/usr/local/share/ca-certificates
IMG_CACHE=$KFT_CACHE_DIR/images
mkdir -p "$IMG_CACHE"

# Packages per image. Recommends are not installed (mmdebstrap's default).
BASE_PKGS="python3,python3-venv,ca-certificates"
# For the dataset/model initializer tests (S3 and Hugging Face downloads in the torch image):
# python3-boto3 (trixie: 1.37.9) and the Debian packages that huggingface_hub needs.
INIT_PKGS="python3-boto3,python3-filelock,python3-fsspec,python3-httpx,python3-packaging,python3-yaml,python3-tqdm,python3-typing-extensions"
TORCH_PKGS="$BASE_PKGS,python3-torch,python3-numpy,$INIT_PKGS"
# Trixie has no python3-huggingface-hub (only forky/sid, 1.23.0-1, which would also pull git
# and perl): the same version comes from PyPI into /opt/venv at build time, pinned with the two
# requirements Debian cannot satisfy (click>=8.4.2; trixie has 8.1.8) or lacks (hf-xet). Part of
# the content key through this script.
TORCH_PIP_PKGS="huggingface_hub==1.23.0 click==8.5.1 hf-xet==1.8.0"

# Files left out of the image (dpkg path-exclude), about 270 MB: libtorch's C++ test binaries,
# and UCX's ROCm (AMD GPU) transport with the ROCm/LLVM libraries only it needs (UCX comes
# in through OpenMPI, a dependency of libtorch; without the module files UCX just has no
# ROCm transport). Nothing on the CPU/gloo path uses them.
# Also about 100 MB of botocore's service models (uncompressed JSON for ~400 AWS services):
# only S3 (the initializers) and STS (credential providers) are kept, with the top-level
# endpoints/partitions files; boto3.client("<any other service>") raises UnknownServiceError.
TRIM=(
  --dpkgopt='path-exclude=/usr/lib/python3/dist-packages/botocore/data/*/*'
  --dpkgopt='path-include=/usr/lib/python3/dist-packages/botocore/data/s3/*'
  --dpkgopt='path-include=/usr/lib/python3/dist-packages/botocore/data/sts/*'
  --dpkgopt='path-exclude=/usr/lib/libtorch-test/*'
  --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/ucx/*rocm*'
  --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/libamdhip64.so*'
  --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/libamd_comgr.so*'
  --dpkgopt='path-exclude=/usr/lib/x86_64-linux-gnu/libLLVM-17.so*'
  --dpkgopt='path-exclude=/usr/lib/llvm-17/*'
)

for e in $ENGINES; do
  case $e in
    docker) docker info >/dev/null 2>&1 || die "docker does not answer; run scripts/containers/setup-engines.sh docker" ;;
    podman) [ -f "$KFT_CONTAINERS_CONF" ] || die "missing $KFT_CONTAINERS_CONF; run scripts/containers/setup-engines.sh podman"
            command -v podman >/dev/null || die "podman not installed; run scripts/containers/setup-engines.sh podman" ;;
  esac
done

# Content key: this script and its helper, the package list, the suite and the CA certificates baked in.
image_key() {  # $1 = image kind, $2 = package list
  {
    cat "$0" "$HERE/torch_no_libuv.py"
    printf 'kind=%s\npkgs=%s\nsuite=%s\n' "$1" "$2" "$SUITE"
    if [ -d "$CA_DIR" ]; then find "$CA_DIR" -type f -name '*.crt' | LC_ALL=C sort | xargs -r cat; fi
  } | sha256sum | cut -c1-16
}

engine_key() {  # $1 engine, $2 image: prints the key label of the image in that engine
  kft_engine_cli "$1" image inspect --format "{{index .Config.Labels \"$LABEL_KEY\"}}" "$2" 2>/dev/null || true
}

# Builds the rootfs tarball $3 for image kind $1 with packages $2.
# Hook strings are single-quoted on purpose: mmdebstrap runs them with $1 = the chroot.
# shellcheck disable=SC2016
build_rootfs() {
  local kind=$1 pkgs=$2 out=$3 tmp hooks=()
  command -v mmdebstrap >/dev/null || die "mmdebstrap not installed; run scripts/containers/setup-engines.sh"
  tmp="${out%.tar}.tmp$$.tar"
  # Hooks run on the host; $1 is the chroot. Everything inside runs under `env -i` so the
  # host's PIP_* / proxy environment does not leak into the image.
  hooks+=(--customize-hook='if [ -d /usr/local/share/ca-certificates ]; then cp -a /usr/local/share/ca-certificates/. "$1/usr/local/share/ca-certificates/"; fi; chroot "$1" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin update-ca-certificates >/dev/null 2>&1')
  hooks+=(--customize-hook='chroot "$1" env -i PATH=/usr/bin:/bin python3 -m venv --system-site-packages /opt/venv')
  if [ "$kind" = torch ]; then
    # Debian's /usr/bin/torchrun starts with #!/usr/bin/python3.13, and torchrun launches its
    # workers with sys.executable: they would miss packages pip-installed into the venv.
    # /opt/venv/bin (first on PATH) gets its own torchrun that runs the venv's python.
    hooks+=(--customize-hook='printf "%s\n" "#!/opt/venv/bin/python3" "import sys" "from torch.distributed.run import main" "if __name__ == \"__main__\":" "    sys.exit(main())" >"$1/opt/venv/bin/torchrun"; chmod 755 "$1/opt/venv/bin/torchrun"')
    # Debian's torch has no libuv but TCPStore asks for it by default: torchrun fails without this.
    hooks+=(--customize-hook="cp '$HERE/torch_no_libuv.py' \"\$1/tmp/\" && chroot \"\$1\" env -i PATH=/usr/bin:/bin python3 /tmp/torch_no_libuv.py")
    # huggingface_hub into the venv (PyPI through the egress proxy; CA certificates are in place).
    hooks+=(--customize-hook="chroot \"\$1\" env -i PATH=/opt/venv/bin:/usr/bin:/bin HOME=/root SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt pip install --no-cache-dir --disable-pip-version-check --no-compile --progress-bar off -q $TORCH_PIP_PKGS")
    # The service directories that path-exclude left empty.
    hooks+=(--customize-hook='find "$1/usr/lib/python3/dist-packages/botocore/data" -mindepth 1 -type d -empty -delete')
    hooks+=(--customize-hook='chroot "$1" env -i PATH=/opt/venv/bin:/usr/bin:/bin python3 -c "import torch, numpy, boto3, huggingface_hub, torch.distributed as d; assert not getattr(d.TCPStore(\"127.0.0.1\", 0, is_master=True), \"libuvBackend\", False); [boto3.client(n, region_name=\"us-east-1\") for n in (\"s3\", \"sts\")]; print(\"chroot check: torch\", torch.__version__, \"numpy\", numpy.__version__, \"boto3\", boto3.__version__, \"huggingface_hub\", huggingface_hub.__version__)"')
  fi
  hooks+=(--customize-hook='mkdir -p "$1/work"; rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/tmp/* "$1"/var/log/apt/* "$1"/root/.cache; find "$1/opt/venv" -name __pycache__ -prune -exec rm -rf {} +')
  log "$kind: mmdebstrap $SUITE ($pkgs) -> $out"
  local t0=$SECONDS rc=0
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="$HOME" LANG=C.UTF-8 \
    mmdebstrap --quiet --variant=apt --format=tar --include="$pkgs" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      "${TRIM[@]}" \
      "${hooks[@]}" "$SUITE" "$tmp" >&2 || rc=$?
  if [ $rc != 0 ]; then rm -f "$tmp"; die "$kind: mmdebstrap failed (rc=$rc)"; fi
  mv "$tmp" "$out"
  log "$kind: rootfs built in $((SECONDS - t0)) s ($(du -h "$out" | cut -f1))"
}

# Imports tarball $3 as image $2 into engine $1 with key $4.
import_image() {
  local engine=$1 image=$2 tar=$3 key=$4 t0=$SECONDS
  local changes=(
    --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV VIRTUAL_ENV=/opt/venv'
    --change 'ENV PYTHONUNBUFFERED=1'
    --change 'ENV LANG=C.UTF-8'
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'
    --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt'
    --change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1'
    --change 'ENV USE_LIBUV=0'
    --change "LABEL $LABEL_KEY=$key"
    --change 'WORKDIR /work'
    --change 'CMD ["python3"]'
  )
  local old_id new_id
  old_id=$(kft_engine_cli "$engine" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  case $engine in
    docker) docker import "${changes[@]}" "$tar" "$image" >/dev/null ;;
    podman) kft_podman import -q "${changes[@]}" "$tar" "$image" >/dev/null ;;
  esac
  [ "$(engine_key "$engine" "$image")" = "$key" ] || { log "$engine: imported $image lacks label $key"; return 1; }
  new_id=$(kft_engine_cli "$engine" image inspect --format '{{.Id}}' "$image")
  # Drop the previous build of this image (now untagged); keep it if a container still uses it.
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    kft_engine_cli "$engine" image rm "$old_id" >/dev/null 2>&1 \
      || log "$engine: previous image ${old_id:0:19} kept (still in use?)"
  fi
  log "$engine: imported $image in $((SECONDS - t0)) s"
}

check_image() {  # $1 engine, $2 kind, $3 image
  local cmd
  if [ "$2" = torch ]; then
    cmd='import torch, numpy, boto3, huggingface_hub, shutil, sys; assert shutil.which("torchrun") == "/opt/venv/bin/torchrun", shutil.which("torchrun"); print("python", sys.version.split()[0], "torch", torch.__version__, "numpy", numpy.__version__, "boto3", boto3.__version__, "huggingface_hub", huggingface_hub.__version__, "torchrun", shutil.which("torchrun"))'
  else
    cmd='import importlib.util as u, sys; assert not any(map(u.find_spec, ("boto3", "huggingface_hub"))), "slim image has boto3/huggingface_hub"; print("python", sys.version.split()[0], "prefix", sys.prefix)'
  fi
  local out
  out=$(kft_engine_cli "$1" run --rm "$3" python3 -c "$cmd" 2>&1) || { printf '%s\n' "$out" >&2; die "$1: $3 failed its smoke test"; }
  log "$1: $3 ok: $(printf '%s' "$out" | tail -n 1)"
}

build_one() {  # $1 kind
  local kind=$1 pkgs image key tar todo=() e
  case $kind in
    torch) pkgs=$TORCH_PKGS; image=$KFT_TORCH_IMAGE ;;
    slim) pkgs=$BASE_PKGS; image=$KFT_SLIM_IMAGE ;;
    *) die "unknown image kind '$kind' in KFT_BUILD_IMAGES (torch, slim)" ;;
  esac
  key=$(image_key "$kind" "$pkgs")
  tar=$IMG_CACHE/$kind-$SUITE-$key.tar
  for e in $ENGINES; do
    if [ "$FORCE" != 1 ] && [ "$(engine_key "$e" "$image")" = "$key" ]; then
      log "$e: $image is up to date (key $key)"
    else
      todo+=("$e")
    fi
  done
  if [ ${#todo[@]} -gt 0 ]; then
    if [ "$FORCE" = 1 ] || [ ! -s "$tar" ]; then
      build_rootfs "$kind" "$pkgs" "$tar"
      # Keep only the current tarball of this kind.
      find "$IMG_CACHE" -maxdepth 1 -name "$kind-*.tar" ! -name "$(basename "$tar")" -delete
    else
      log "$kind: using cached rootfs $tar"
    fi
    # Import into the engines in parallel.
    local pids=() failed=0 i
    for e in "${todo[@]}"; do import_image "$e" "$image" "$tar" "$key" & pids+=($!); done
    for i in "${!pids[@]}"; do wait "${pids[$i]}" || { log "${todo[$i]}: import of $image failed"; failed=1; }; done
    [ $failed = 0 ] || die "import failed"
    for e in "${todo[@]}"; do check_image "$e" "$kind" "$image"; done
  fi
  BUILT+=("$image")
}

# One build at a time per cache dir.
exec 9>"$IMG_CACHE/.lock"
flock -w 1800 9 || die "another build holds $IMG_CACHE/.lock"

T0=$SECONDS
BUILT=()
kinds=" $BUILD_IMAGES "
for kind in $BUILD_IMAGES; do
  case $kind in torch|slim) ;; *) die "unknown image kind '$kind' in KFT_BUILD_IMAGES (torch, slim)" ;; esac
done
# torch last, so its name is the last line of stdout.
[[ $kinds == *" slim "* ]] && build_one slim
[[ $kinds == *" torch "* ]] && build_one torch
log "done in $((SECONDS - T0)) s (engines: $ENGINES)"
printf '%s\n' "${BUILT[@]}"
