"""``kubeflow-trainer doctor -b kubernetes``: the kube context, the API server and its version, the CRDs of
Kubeflow Trainer and JobSet."""

from __future__ import annotations

from typing import Any

from kubeflow_trainer.doctor import Check, fail, ok
from kubeflow_trainer_k8s.config import KubernetesBackendConfig

CRDS = (
    ("trainjobs.trainer.kubeflow.org", "Kubeflow Trainer"),
    ("clustertrainingruntimes.trainer.kubeflow.org", "Kubeflow Trainer"),
    ("trainingruntimes.trainer.kubeflow.org", "Kubeflow Trainer"),
    ("jobsets.jobset.x-k8s.io", "JobSet (installed with Kubeflow Trainer)"),
)
INSTALL_FIX = (
    "install Kubeflow Trainer (controller, CRDs, runtimes): kubectl apply --server-side -k "
    "<kubeflow/trainer>/manifests/overlays/manager, then .../overlays/runtimes (see its installation guide)"
)


def checks(config: KubernetesBackendConfig) -> list[Check]:
    """Context, API server version, CRDs; stops at the first check the later ones depend on."""
    from kubeflow_trainer_k8s.backend import KubernetesBackend

    try:
        backend = KubernetesBackend(config)
    except Exception as exc:
        return [
            fail(
                "kube context",
                str(exc).split("; ")[0],
                "set KUBECONFIG or ~/.kube/config, or --config config_file=... --config context=...",
            )
        ]
    result = [ok("kube context", f"{_context(config)} -> {backend.host}, namespace {backend.namespace}")]
    try:
        result.append(_server(backend))
        if result[-1].ok:
            result.extend(_crd(backend, name, owner) for name, owner in CRDS)
    finally:
        backend.close()
    return result


def _context(config: KubernetesBackendConfig) -> str:
    if config.client_configuration is not None:
        return "client_configuration"
    if config.context:
        return f"context {config.context}"
    try:
        from kubernetes import config as k8s_config

        _, active = k8s_config.list_kube_config_contexts(config_file=config.config_file)  # type: ignore[no-untyped-call]
        return f"context {active['name']}"
    except Exception:
        return "in-cluster"


def _server(backend: Any) -> Check:
    from kubernetes import client as k8s

    try:
        info = k8s.VersionApi(backend.api_client).get_code(_request_timeout=min(backend.timeout, 15))
    except Exception as exc:
        return fail(
            f"API server {backend.host} reachable",
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            "start the cluster or fix the kubeconfig's server address and credentials",
        )
    return ok(f"API server {backend.host} reachable", f"Kubernetes {info.git_version}")


def _crd(backend: Any, name: str, owner: str) -> Check:
    from kubernetes import client as k8s

    try:
        crd = k8s.ApiextensionsV1Api(backend.api_client).read_custom_resource_definition(
            name, _request_timeout=min(backend.timeout, 15)
        )
    except Exception as exc:
        status = getattr(exc, "status", None)
        if status == 404:
            return fail(f"CRD {name}", f"not installed ({owner})", INSTALL_FIX)
        if status == 403:
            return fail(f"CRD {name}", "forbidden to read CRDs", "ask for read access to customresourcedefinitions")
        return fail(f"CRD {name}", f"{type(exc).__name__}: {exc}", "check the API server")
    versions = ", ".join(v.name for v in crd.spec.versions if v.served)
    return ok(f"CRD {name}", f"served versions: {versions}")
