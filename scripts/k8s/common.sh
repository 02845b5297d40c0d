# Common settings for scripts/k8s/*.sh. Source it; do not run it.
# Everything is derived from versions.env and a few environment variables:
#   KFT_K8S_CACHE   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/kubeflow-trainer-tests/k8s)
#   KFT_K8S_RUN_DIR runtime dir of a running control plane (default ${TMPDIR:-/tmp}/kft-k8s-$UID)
K8S_SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$K8S_SCRIPTS_DIR/versions.env"

K8S_CACHE_ROOT=${KFT_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeflow-trainer-tests/k8s}
K8S_KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_trainer-${TRAINER_VERSION}_jobset-${JOBSET_VERSION}_kwok-${KWOK_VERSION}"
K8S_HOME="$K8S_CACHE_ROOT/$K8S_KEY"
K8S_BIN="$K8S_HOME/bin"
K8S_MANIFESTS="$K8S_HOME/manifests"
K8S_WORK="$K8S_CACHE_ROOT/work"          # wrapper modules, build logs
RUN_DIR=${KFT_K8S_RUN_DIR:-${TMPDIR:-/tmp}/kft-k8s-$(id -u)}

export GOTOOLCHAIN=local
export GOFLAGS="-buildvcs=false"
export CGO_ENABLED=0

k8s_log() { printf '[k8s %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Real-kubelet tier (node-*.sh): binaries and images keyed by their own versions, next to the plane's.
NODE_KEY="node-k8s-${K8S_VERSION}_cni-${CNI_PLUGINS_VERSION}_coredns-${COREDNS_VERSION}_containerd-${CONTAINERD_VERSION}"
NODE_HOME="$K8S_CACHE_ROOT/$NODE_KEY"
NODE_BIN="$NODE_HOME/bin"
