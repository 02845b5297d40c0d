"""The Kubernetes backend: TrainJobs, runtimes, pods, logs and events through the official client."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any, TypeVar

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from pydantic import SecretStr

from kubeflow_trainer import (
    AlreadyExistsError,
    Backend,
    BackendError,
    BackendUnavailableError,
    Event,
    InvalidRequestError,
    JobNotFoundError,
    Runtime,
    RuntimeNotFoundError,
    Step,
    StepNotFoundError,
    TrainJob,
    restarts,
)
from kubeflow_trainer.logs import LogEntry
from kubeflow_trainer.outputs import OutputFile
from kubeflow_trainer.plan import JobPlan
from kubeflow_trainer.rootcause import environment_failure, exit_reason, first_failure, parse_error_file
from kubeflow_trainer.runtimes import RuntimeParseError, runtime_from_object
from kubeflow_trainer.trainjob_status import trainer_status_from_api
from kubeflow_trainer.types import JobStatus, Preparation, RuntimeKind, RuntimeTrainer, TrainerType
from kubeflow_trainer_k8s.config import KubernetesBackendConfig
from kubeflow_trainer_k8s.render import (
    API_VERSION,
    GROUP,
    SDK_LABEL,
    VERSION,
    WORKSPACE_KEY,
    WORKSPACE_LIMIT,
    WORKSPACE_MANAGER,
    apply_callable_options,
    initializer_secret_name,
    initializer_secrets,
    render_secret,
    render_trainjob,
    workspace_configmap_name,
)
from kubeflow_trainer_k8s.request import InitializerSecret, KubernetesJobRequest, WorkspaceConfigMap

WORKSPACE_LABEL = "trainer.kubeflow.org/workspace"

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def _log_time(stamp: str) -> datetime | None:
    """The kubelet's RFC 3339 log timestamp (nanoseconds, ``Z``), or None."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    try:
        return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")
    except ValueError:
        return None


JOBSET_LABEL = "jobset.sigs.k8s.io/jobset-name"
RJOB_LABEL = "jobset.sigs.k8s.io/replicatedjob-name"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
INSTALL_HINT = (
    "Install Kubeflow Trainer on the cluster (kubectl apply --server-side -k "
    '"https://github.com/kubeflow/trainer.git/manifests/overlays/manager?ref=v2.3.0" and the runtimes overlay)'
)
FAILED_JOBS = "FailedJobs"
"""The reason of a TrainJob's Failed condition when a Job of its JobSet failed."""
PODS_GONE = (
    "No failed pod is left to show the error: the runtime sets no restartPolicy, so its pods restart OnFailure "
    "(JobSet's default) and the Job controller deletes a pod whose restarts exceed the Job's backoffLimit, log "
    "included. To keep failed pods and their logs until delete_job, set restartPolicy: Never (and backoffLimit: 0 "
    "for a prompt failure) in the runtime's spec.template.spec.replicatedJobs[].template.spec"
)
PHASE_TO_STATUS = {
    "Pending": JobStatus.CREATED,
    "Running": JobStatus.RUNNING,
    "Succeeded": JobStatus.COMPLETE,
    "Failed": JobStatus.FAILED,
}
"""Pod phases (the Kubernetes API's strings) -> step statuses."""
CONDITION_FAILED, CONDITION_COMPLETE, CONDITION_SUSPENDED = "Failed", "Complete", "Suspended"
"""TrainJob condition types (the Trainer API's strings)."""


def api_errors(what: str) -> Callable[[F], F]:
    """Map client errors to the SDK's: unreachable, forbidden, CRDs missing, not found, exists, invalid."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(self: KubernetesBackend, *args: Any, **kwargs: Any) -> Any:
            try:
                return func(self, *args, **kwargs)
            except ApiException as exc:
                raise self.translate(exc, what, args[0] if args and isinstance(args[0], str) else None) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise BackendUnavailableError(
                    f"cannot reach the Kubernetes API server at {self.host}: {exc}. Check the cluster is up and "
                    "KUBECONFIG / KubernetesBackendConfig(config_file=..., context=...) points at it."
                ) from exc

        return wrapper  # type: ignore[return-value]

    return decorate


def _preparation(pods: dict[str, Any], num_nodes: int) -> Preparation:
    """What a job that does not run yet waits for: an initializer, else its node pods (started of N, and why the
    first waiting one waits: ``ContainerCreating``, ``ErrImagePull``...)."""
    for step, pod in sorted(pods.items()):
        if not step.startswith("node-") and pod.status.phase in ("Pending", "Running"):
            return Preparation(phase="initializing", detail=step)
    nodes = [pod for step, pod in pods.items() if step.startswith("node-")]
    running = sum(1 for pod in nodes if pod.status.phase in ("Running", "Succeeded"))
    waiting = ""
    for pod in nodes:
        for cs in pod.status.container_statuses or []:
            if cs.state and cs.state.waiting and cs.state.waiting.reason:
                waiting = str(cs.state.waiting.reason)
                break
        if waiting:
            break
    return Preparation(phase="starting nodes", done=running, total=num_nodes, unit="nodes", detail=waiting)


def termination_cause(terminated: Any) -> str:
    """A failed container's message: the user's exception that failed first (the job side writes one JSON
    line per failed process to the termination message, in torchrun's error-file format), the requirement
    the launcher could not install, out of memory (``OOMKilled``), else the message or reason as given."""
    text = (terminated.message or "").strip()
    failures = [parse_error_file(line) for line in text.splitlines() if line.startswith("{")]
    found = first_failure(failures)
    if terminated.reason == "OOMKilled":
        oom = exit_reason(terminated.exit_code, oom_killed=True)
        return f"{oom}; last error: {found.describe()}" if found else oom
    if found is not None:
        return found.describe()
    env = environment_failure(text) if text else None
    if env:
        return f"installing packages_to_install failed: {env}"
    plain = [line for line in text.splitlines() if not line.startswith("{") and not restarts.is_record(line)]
    return "\n".join(plain).strip() or str(terminated.reason or exit_reason(terminated.exit_code))


def failed_first(pods: dict[str, Any]) -> tuple[str, str] | None:
    """The step whose container failed first (by the time it finished) and ``<step> failed: <cause>``, from the
    pods of a job by step; None when no pod is left with a failed container."""
    failed = []
    for step, pod in pods.items():
        for cs in pod.status.container_statuses or []:
            terminated = cs.state.terminated if cs.state else None
            if terminated is not None and terminated.exit_code:
                finished = terminated.finished_at.timestamp() if terminated.finished_at else float("inf")
                failed.append((finished, step, terminated))
    if not failed:
        return None
    _, step, terminated = min(failed, key=lambda f: (f[0], f[1]))
    cause = termination_cause(terminated)
    if cause == str(terminated.reason or ""):  # nothing more than the kubelet's reason ("Error")
        cause = exit_reason(terminated.exit_code)
    return step, f"{step} failed: {cause}"


def stopped_with_the_job(steps: list[Step], num_nodes: int, root: str | None) -> list[Step]:
    """The steps of a Failed TrainJob with every node ended, as the other backends show them: a node pod the
    Job controller is still stopping, or has already deleted (it deletes a failed Job's active pods, their
    logs with them), reads Failed: stopped because ``root`` failed, or not started after a failed initializer
    (the node pods were never created); with no failed pod left to name, the TrainJob's message says why."""
    if root is None:
        stopped, gone = (
            "stopped: the TrainJob failed",
            "the TrainJob failed and this node's pod is gone; see its message",
        )
    elif root.startswith("node-"):
        stopped = f"stopped because {root} failed"
        gone = f"{stopped} (its pod is gone: the Job controller deletes a failed Job's running pods)"
    else:
        stopped = gone = f"not started because {root} failed"
    by_name = {s.name: s for s in steps}
    out = [s for s in steps if not s.name.startswith("node-")]
    for rank in range(max(num_nodes, sum(1 for s in steps if s.name.startswith("node-")))):
        step = by_name.get(f"node-{rank}")
        if step is None:
            step = Step(name=f"node-{rank}", status=JobStatus.FAILED, message=gone)
        elif step.status not in (JobStatus.COMPLETE, JobStatus.FAILED):
            step = step.model_copy(update={"status": JobStatus.FAILED, "message": stopped})
        out.append(step)
    return out


def restart_records(pod: Any) -> list[tuple[int, float]]:
    """torchrun's restarts of the pod's workers (``MaxRestarts``), as the job recorded them in the container's
    termination message: known once the container ended (the kubelet copies the message then)."""
    out: list[tuple[int, float]] = []
    for cs in pod.status.container_statuses or []:
        terminated = cs.state.terminated if cs.state else None
        if terminated is not None and terminated.message:
            out += restarts.parse(terminated.message, marked=True)
    return out


def _log_lines(text: str) -> list[str]:
    """A pod log's lines, split at newlines only: a ``\r`` inside a line (a progress bar) stays in it, for the
    client to show the bar's latest state (``str.splitlines`` would make every update a line of its own)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class KubernetesBackend(Backend[KubernetesJobRequest]):
    """TrainJobs (``trainer.kubeflow.org/v1alpha1``) on a cluster with Kubeflow Trainer."""

    name = "kubernetes"
    request_model = KubernetesJobRequest
    status_poll_interval = 1.0

    def __init__(self, config: KubernetesBackendConfig) -> None:
        super().__init__(config)
        self.config: KubernetesBackendConfig = config
        try:
            if config.client_configuration is not None:
                api_client = k8s.ApiClient(config.client_configuration)
                namespace = config.namespace or "default"
            elif config.config_file or config.context or not os.path.exists(SA_NAMESPACE):
                cfg = k8s.Configuration()
                k8s_config.load_kube_config(  # type: ignore[no-untyped-call]  # the client is untyped
                    config_file=config.config_file, context=config.context, client_configuration=cfg
                )
                api_client = k8s.ApiClient(cfg)
                _, active = k8s_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                    config_file=config.config_file
                )
                ctx = active
                if config.context:
                    ctx = next(
                        c
                        for c in k8s_config.list_kube_config_contexts(config.config_file)[0]  # type: ignore[no-untyped-call]
                        if c["name"] == config.context
                    )
                namespace = config.namespace or ctx.get("context", {}).get("namespace") or "default"
            else:
                k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
                api_client = k8s.ApiClient()
                with open(SA_NAMESPACE) as fh:
                    namespace = config.namespace or fh.read().strip()
        except (k8s_config.ConfigException, OSError, StopIteration) as exc:
            raise BackendUnavailableError(
                f"no usable Kubernetes configuration ({exc}); set KUBECONFIG or "
                "KubernetesBackendConfig(config_file=..., context=...)"
            ) from exc
        self.namespace = namespace
        self.api_client: Any = api_client  # the client's ApiClient is untyped
        self.host = api_client.configuration.host
        self.custom = k8s.CustomObjectsApi(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.timeout = config.request_timeout
        self.api_calls = 0
        """API requests made so far (the list_jobs benchmark reads it)."""

    # Errors ------------------------------------------------------------------------------------------
    def translate(self, exc: ApiException, what: str, name: str | None) -> Exception:
        body = exc.body if isinstance(exc.body, str) else ""
        message = body
        try:
            import json

            message = json.loads(body).get("message", body)
        except ValueError:
            pass
        missing_api = ("the server could not find the requested resource", "404 page not found")
        if exc.status == 404 and any(m in (message or "") for m in missing_api):  # the API itself is absent
            return BackendError(
                f"the Kubeflow Trainer CRDs ({GROUP}/{VERSION}) are not installed on {self.host}. {INSTALL_HINT}."
            )
        if exc.status == 404 and name and "trainjob" in what:
            return JobNotFoundError(name, self.name, f"Namespace: {self.namespace}.")
        if exc.status == 404:
            return BackendError(f"{what}: not found: {message}")
        if exc.status == 409:
            return AlreadyExistsError(name or "?", self.name)
        if exc.status in (401, 403) and ("cannot" in message or exc.status == 401):
            return BackendError(
                f"{what} is forbidden on {self.host}: {message}. Ask for RBAC permission for that verb and "
                f"resource in namespace {self.namespace}."
            )
        if exc.status in (400, 403, 422):
            return InvalidRequestError(f"the API server refused the {what}: {message}")
        return BackendError(f"{what} failed ({exc.status} {exc.reason}): {message}")

    def _call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self.api_calls += 1
        return func(*args, _request_timeout=self.timeout, **kwargs)

    # Runtimes ----------------------------------------------------------------------------------------
    @api_errors("listing training runtimes")
    def list_runtimes(self) -> list[Runtime]:
        found: dict[str, Runtime] = {}
        for runtime in self._all_runtimes().values():  # namespaced ones win: they come last
            found[runtime.name] = runtime
        return sorted(found.values(), key=lambda r: r.name)

    @api_errors("reading a training runtime")
    def get_runtime(self, name: str) -> Runtime:
        for plural, namespaced in (("trainingruntimes", True), ("clustertrainingruntimes", False)):
            try:
                if namespaced:
                    obj = self._call(
                        self.custom.get_namespaced_custom_object, GROUP, VERSION, self.namespace, plural, name
                    )
                else:
                    obj = self._call(self.custom.get_cluster_custom_object, GROUP, VERSION, plural, name)
            except ApiException as exc:
                if exc.status == 404 and not any(
                    m in str(exc.body) for m in ("could not find the requested", "404 page not found")
                ):
                    continue
                raise
            obj.setdefault("kind", "TrainingRuntime" if namespaced else "ClusterTrainingRuntime")
            return runtime_from_object(obj)
        raise RuntimeNotFoundError(name, [r.name for r in self.list_runtimes()])

    # Jobs --------------------------------------------------------------------------------------------
    def render(self, plan: JobPlan) -> KubernetesJobRequest:
        """The TrainJob (callable options applied: upstream's option protocol) and its credential Secrets."""
        secrets = []
        for target, values in initializer_secrets(plan).items():
            body = render_secret(plan.name, target, values, self.namespace)
            secrets.append(
                InitializerSecret(
                    name=body["metadata"]["name"],
                    target=target,
                    labels=body["metadata"]["labels"],
                    data={key: SecretStr(value) for key, value in values.items()},
                )
            )
        return KubernetesJobRequest(
            name=plan.name,
            namespace=self.namespace,
            trainjob=apply_callable_options(render_trainjob(plan, self.namespace), plan, self),
            secrets=tuple(secrets),
            workspace=self._workspace(plan),
        )

    @staticmethod
    def _workspace(plan: JobPlan) -> WorkspaceConfigMap | None:
        """The workspace ConfigMap of ``plan``; refused here (before anything is created) when over the limit."""
        snapshot = plan.workspace
        if snapshot is None:
            return None
        archive = snapshot.archive(compress=True)
        snapshot.check_limit(
            WORKSPACE_LIMIT,
            backend="kubernetes",
            size=len(archive),
            measured="compressed",
            why="it travels in a ConfigMap, and the API server refuses objects over 1 MiB",
            alternative="for more, bake the project into the image (CustomTrainer(image=...)) and ship only the "
            "function, or fetch data in the job from storage (an initializer or a PVC via RuntimePatch)",
        )
        import base64

        return WorkspaceConfigMap(
            name=workspace_configmap_name(snapshot.digest),
            labels={SDK_LABEL: "kubeflow-trainer-sdk", WORKSPACE_LABEL: snapshot.short_digest},
            key=WORKSPACE_KEY,
            archive_b64=base64.b64encode(archive).decode(),
            snapshot=snapshot,
        )

    def _ensure_workspace(self, request: KubernetesJobRequest) -> bool:
        """Create the workspace ConfigMap unless one with this content exists; True when this call created it."""
        workspace = request.workspace
        assert workspace is not None
        try:
            self._call(self.core.create_namespaced_config_map, request.namespace, workspace.body(request.namespace))
            return True
        except ApiException as exc:
            if exc.status != 409:
                raise
        return False  # named by content digest: the existing one holds the same files

    def _own_workspace(self, request: KubernetesJobRequest, owner: dict[str, Any]) -> None:
        """Add ``owner`` to the workspace ConfigMap's owners (read, append, replace; retried on a conflict)."""
        assert request.workspace is not None
        for _ in range(5):
            cm = self._call(self.core.read_namespaced_config_map, request.workspace.name, request.namespace)
            owners = [o for o in (cm.metadata.owner_references or []) if o.uid != owner["uid"]]
            cm.metadata.owner_references = [*owners, owner]
            try:
                self._call(self.core.replace_namespaced_config_map, request.workspace.name, request.namespace, cm)
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
        raise BackendError(f"could not record job {request.name!r} as an owner of ConfigMap {request.workspace.name}")

    def _release_workspace(self, job: str, uid: str | None, configmap: str) -> None:
        """Drop ``job`` from the workspace ConfigMap's owners and delete it when no owner is left (the cluster's
        garbage collector would too; this leaves nothing behind when it does not run)."""
        for _ in range(5):
            try:
                cm = self._call(self.core.read_namespaced_config_map, configmap, self.namespace)
            except ApiException as exc:
                if exc.status in (403, 404):
                    return
                raise
            owners = [
                o
                for o in (cm.metadata.owner_references or [])
                if not (o.kind == "TrainJob" and (o.uid == uid or (uid is None and o.name == job)))
            ]
            try:
                if owners:
                    cm.metadata.owner_references = owners
                    self._call(self.core.replace_namespaced_config_map, configmap, self.namespace, cm)
                else:
                    self._call(self.core.delete_namespaced_config_map, configmap, self.namespace)
                return
            except ApiException as exc:
                if exc.status == 404:
                    return
                if exc.status != 409:
                    raise

    @api_errors("creation of the trainjob")
    def submit(self, request: KubernetesJobRequest) -> None:
        written: list[str] = []
        for secret in request.secrets:  # first, so that the initializer pods find them; owned by the job below
            try:
                self._call(self.core.create_namespaced_secret, request.namespace, secret.body(request.namespace))
            except ApiException as exc:
                if exc.status != 409:
                    self._delete_secrets(request.name, written)
                    raise
                read = self._call(self.core.read_namespaced_secret, secret.name, request.namespace)
                if read.metadata.owner_references:
                    # another TrainJob of this name holds it: touch nothing of that job
                    self._delete_secrets(request.name, written)
                    raise AlreadyExistsError(request.name, self.name) from exc
                body = secret.body(request.namespace)
                self._call(self.core.replace_namespaced_secret, secret.name, request.namespace, body)  # a leftover
            written.append(secret.name)
        new_workspace = False
        if request.workspace is not None:
            try:
                new_workspace = self._ensure_workspace(request)
            except BaseException:
                self._delete_secrets(request.name, written)
                raise
        try:
            created = self._call(
                self.custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                request.namespace,
                "trainjobs",
                request.trainjob,
            )
        except BaseException as exc:
            self._delete_secrets(request.name, written)
            if new_workspace and request.workspace is not None:
                self._release_workspace(request.name, None, request.workspace.name)
            if isinstance(exc, ApiException) and exc.status == 409:
                raise AlreadyExistsError(request.name, self.name) from exc
            raise
        owner = {
            "apiVersion": API_VERSION,
            "kind": "TrainJob",
            "name": request.name,
            "uid": created["metadata"]["uid"],
            "blockOwnerDeletion": False,
        }
        for secret in request.secrets:  # garbage-collected with the TrainJob, whoever deletes it
            patch = {"metadata": {"ownerReferences": [owner]}}
            self._call(self.core.patch_namespaced_secret, secret.name, request.namespace, patch)
        if request.workspace is not None:
            self._own_workspace(request, owner)

    def _delete_secrets(self, job: str, names: list[str] | None = None) -> None:
        """Delete the job's initializer Secrets; absent ones, or no right to touch Secrets (a job without
        credentials never had any), are not an error: ownerReferences let the cluster collect them."""
        for name in [initializer_secret_name(job, t) for t in ("dataset", "model")] if names is None else names:
            try:
                self._call(self.core.delete_namespaced_secret, name, self.namespace)
            except ApiException as exc:
                if exc.status not in (403, 404):
                    raise

    def _pods(self, selector: str) -> list[Any]:
        return list(self._call(self.core.list_namespaced_pod, self.namespace, label_selector=selector).items)

    @staticmethod
    def _step_name(pod: Any) -> str:
        labels = pod.metadata.labels or {}
        rjob = labels.get(RJOB_LABEL, "")
        if rjob in ("node", "trainer-node", "launcher"):
            return f"node-{labels.get(INDEX_LABEL, '0')}"
        return str(rjob or pod.metadata.name)

    def _job(self, obj: dict[str, Any], pods: list[Any], runtimes: dict[tuple[str, str], Runtime]) -> TrainJob:
        meta, spec, status = obj["metadata"], obj.get("spec", {}), obj.get("status") or {}
        num_nodes = int((spec.get("trainer") or {}).get("numNodes") or 1)
        newest: dict[str, Any] = {}
        for pod in pods:
            step = self._step_name(pod)
            if step not in newest or pod.metadata.creation_timestamp > newest[step].metadata.creation_timestamp:
                newest[step] = pod
        steps = []
        for step, pod in sorted(newest.items(), key=lambda kv: (kv[0].startswith("node-"), kv[0])):
            terminated = None
            for cs in pod.status.container_statuses or []:
                if cs.state and cs.state.terminated:
                    terminated = cs.state.terminated
            steps.append(
                Step(
                    name=step,
                    status=PHASE_TO_STATUS.get(pod.status.phase or "", JobStatus.CREATED),
                    pod_name=pod.metadata.name,
                    exit_code=terminated.exit_code if terminated else None,
                    message=termination_cause(terminated) if terminated and terminated.exit_code else None,
                    restarts=len(restart_records(pod)),
                )
            )
        job_status, message = JobStatus.CREATED, None
        conditions = {c.get("type"): c for c in status.get("conditions", []) if c.get("status") == "True"}
        if CONDITION_FAILED in conditions:
            job_status, message = JobStatus.FAILED, conditions[CONDITION_FAILED].get("message")
            failed_steps = any(s.status == JobStatus.FAILED for s in steps)
            root = failed_first(newest)
            if root is not None:
                # the step that failed first, as the other backends say it; the JobSet's message names its Job
                # (replicated job and Job index: "<job>-node-0" holds every node's pod), not a node
                message = f"{root[1]}" + (f" (the TrainJob's condition: {message})" if message else "")
            elif conditions[CONDITION_FAILED].get("reason") == FAILED_JOBS and not failed_steps:
                message = f"{message}. {PODS_GONE}" if message else PODS_GONE
            steps = stopped_with_the_job(steps, num_nodes, root[0] if root else None)
        elif CONDITION_COMPLETE in conditions:
            job_status = JobStatus.COMPLETE
        elif CONDITION_SUSPENDED in conditions or (spec.get("suspend") and not steps):
            # Suspended by spec.suspend (Kueue sets it until it admits the job); a Suspended=False condition
            # (reason Resumed) is left behind after a resume and means nothing more (kubeflow/sdk#803).
            job_status = JobStatus.SUSPENDED
            message = conditions.get(CONDITION_SUSPENDED, {}).get("message") or "suspended (spec.suspend is true)"
        else:
            nodes = [s for s in steps if s.name.startswith("node-")]
            if len(nodes) >= num_nodes and all(s.status in (JobStatus.RUNNING, JobStatus.COMPLETE) for s in nodes):
                job_status = JobStatus.RUNNING
        runtime = self._job_runtime(spec, runtimes)
        preparation = _preparation(newest, num_nodes) if job_status == JobStatus.CREATED else None
        return TrainJob(
            name=meta["name"],
            runtime=runtime,
            steps=steps,
            num_nodes=num_nodes,
            creation_timestamp=_parse_ts(meta.get("creationTimestamp")),
            status=JobStatus(job_status),
            message=message,
            backend=self.name,
            labels=meta.get("labels") or {},
            annotations=meta.get("annotations") or {},
            trainer_status=trainer_status_from_api(status.get("trainerStatus")),
            preparation=preparation,
        )

    @staticmethod
    def _runtime_ref(spec: dict[str, Any]) -> tuple[str, str]:
        ref = spec.get("runtimeRef") or {}
        return ref.get("kind") or RuntimeKind.CLUSTER_TRAINING_RUNTIME.value, ref.get("name", "")

    def _job_runtime(self, spec: dict[str, Any], runtimes: dict[tuple[str, str], Runtime]) -> Runtime:
        """The job's runtime as resolved from the cluster; a runtime deleted since the job was created is
        named with what the TrainJob says about it (framework 'unknown')."""
        kind, name = self._runtime_ref(spec)
        found = runtimes.get((kind, name))
        if found is not None:
            return found
        trainer = spec.get("trainer") or {}
        builtin = list(trainer.get("command") or ())[:2] == ["tune", "run"]
        return Runtime(
            name=name,
            trainer=RuntimeTrainer(
                trainer_type=TrainerType.BUILTIN_TRAINER if builtin else TrainerType.CUSTOM_TRAINER,
                framework="torchtune" if builtin else "unknown",
            ),
            kind=RuntimeKind(kind),
        )

    def _parse_runtimes(self, objs: list[dict[str, Any]]) -> dict[tuple[str, str], Runtime]:
        out: dict[tuple[str, str], Runtime] = {}
        for obj in objs:
            try:
                runtime = runtime_from_object(obj)
            except RuntimeParseError as exc:
                log.warning("skipping runtime %s: %s", obj.get("metadata", {}).get("name"), exc)
                continue
            out[(runtime.kind.value, runtime.name)] = runtime
        return out

    def _all_runtimes(self) -> dict[tuple[str, str], Runtime]:
        """Both kinds of runtime by (kind, name): two API calls, whatever the number of runtimes."""
        cluster = self._call(self.custom.list_cluster_custom_object, GROUP, VERSION, "clustertrainingruntimes")
        local = self._call(
            self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, "trainingruntimes"
        )
        for item in cluster.get("items", []):
            item.setdefault("kind", RuntimeKind.CLUSTER_TRAINING_RUNTIME.value)
        for item in local.get("items", []):
            item.setdefault("kind", RuntimeKind.TRAINING_RUNTIME.value)
        return self._parse_runtimes([*cluster.get("items", []), *local.get("items", [])])

    def _one_runtime(self, spec: dict[str, Any]) -> dict[tuple[str, str], Runtime]:
        """The runtime a TrainJob refers to (one API call); none when it is gone or unreadable."""
        kind, name = self._runtime_ref(spec)
        try:
            if kind == RuntimeKind.TRAINING_RUNTIME.value:
                obj = self._call(
                    self.custom.get_namespaced_custom_object, GROUP, VERSION, self.namespace, "trainingruntimes", name
                )
            else:
                obj = self._call(self.custom.get_cluster_custom_object, GROUP, VERSION, "clustertrainingruntimes", name)
        except ApiException as exc:
            if exc.status in (403, 404):  # deleted since, or no right to read runtimes: the job is still shown
                return {}
            raise
        obj.setdefault("kind", kind)
        return self._parse_runtimes([obj])

    @api_errors("reading the trainjob")
    def get_job(self, name: str) -> TrainJob:
        return self._read_job(name)[0]

    def _read_job(self, name: str) -> tuple[TrainJob, list[Any]]:
        """The job and its pods (two API calls, plus its runtime)."""
        obj = self._call(self.custom.get_namespaced_custom_object, GROUP, VERSION, self.namespace, "trainjobs", name)
        pods = self._pods(f"{JOBSET_LABEL}={name}")
        return self._job(obj, pods, self._one_runtime(obj.get("spec") or {})), pods

    @api_errors("listing trainjobs")
    def list_jobs(self, runtime: Runtime | None = None) -> list[TrainJob]:
        """Constant API cost, whatever the number of jobs: one TrainJob list, one pod list and the two runtime
        lists (each job's runtime is resolved from those)."""
        objs = self._call(self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, "trainjobs").get(
            "items", []
        )
        if runtime is not None:
            objs = [o for o in objs if self._runtime_ref(o.get("spec") or {})[1] == runtime.name]
        pods: dict[str, list[Any]] = {}
        for pod in self._pods(JOBSET_LABEL):
            pods.setdefault((pod.metadata.labels or {}).get(JOBSET_LABEL, ""), []).append(pod)
        runtimes = self._all_runtimes()
        jobs = [self._job(obj, pods.get(obj["metadata"]["name"], []), runtimes) for obj in objs]
        return sorted(jobs, key=lambda j: j.creation_timestamp)

    @api_errors("reading the trainjob logs")
    def get_job_logs(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[str]:
        job = self.get_job(name)
        known = [s.name for s in job.steps]
        expected = {f"node-{i}" for i in range(job.num_nodes)}
        if step not in known and not (follow and step in expected):
            raise StepNotFoundError(name, step, known or sorted(expected))
        return self._translated(self._logs(name, step, follow))

    def get_job_log_entries(self, name: str, step: str = "node-0", follow: bool = False) -> Iterator[LogEntry]:
        """A step's log lines with the time the kubelet recorded for each (the log API's ``timestamps``)."""
        if follow:
            return (LogEntry(None, line) for line in self.get_job_logs(name, step, follow))
        job = self.get_job(name)
        if step not in [s.name for s in job.steps]:
            raise StepNotFoundError(name, step, [s.name for s in job.steps])
        return self._translated(self._timed(name, step))

    def _timed(self, name: str, step: str) -> Iterator[LogEntry]:
        pod = self._pod_for(name, step)
        if pod is None or pod.status.phase == "Pending":
            return
        container = "node" if step.startswith("node-") else step
        text = self._call(
            self.core.read_namespaced_pod_log, pod.metadata.name, self.namespace, container=container, timestamps=True
        )
        for line in _log_lines(text):
            stamp, _, rest = line.partition(" ")
            when = _log_time(stamp)
            yield LogEntry(when, rest) if when else LogEntry(None, line)

    def _translated(self, lines: Iterator[T]) -> Iterator[T]:
        try:
            yield from lines
        except ApiException as exc:
            raise self.translate(exc, "reading the trainjob logs", None) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailableError(
                f"lost the Kubernetes API server at {self.host} while reading logs: {exc}"
            ) from exc

    def _pod_for(self, name: str, step: str) -> Any:
        for pod in self._pods(f"{JOBSET_LABEL}={name}"):
            if self._step_name(pod) == step:
                return pod
        return None

    def _logs(self, name: str, step: str, follow: bool) -> Iterator[str]:
        container = "node" if step.startswith("node-") else step
        pod = self._pod_for(name, step)
        if not follow:
            if pod is None or pod.status.phase == "Pending":
                return
            text = self._call(self.core.read_namespaced_pod_log, pod.metadata.name, self.namespace, container=container)
            yield from _log_lines(text)
            return
        while pod is None or pod.status.phase == "Pending":  # a job whose pods are not running yet
            if self.get_job(name).status in (JobStatus.COMPLETE, JobStatus.FAILED):
                return
            time.sleep(0.5)
            pod = self._pod_for(name, step)
        yield from self._stream(pod.metadata.name, container)

    def _stream(self, pod_name: str, container: str) -> Iterator[str]:
        """Follow a pod's log; stop once the pod has ended and the stream went quiet (a fake kubelet such as
        KWOK never closes it)."""
        # with _preload_content=False the client returns the raw urllib3 response (its stubs say str)
        resp: Any = self.core.read_namespaced_pod_log(
            pod_name, self.namespace, container=container, follow=True, _preload_content=False
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            pending = b""
            try:
                for chunk in resp.stream(1024):
                    pending += chunk
                    *done, pending = pending.split(b"\n")
                    for line in done:
                        lines.put(line.decode(errors="replace"))
                if pending:
                    lines.put(pending.decode(errors="replace"))
            except Exception:  # the connection was closed below, or dropped
                pass
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        try:
            while True:
                try:
                    line = lines.get(timeout=0.5)
                except queue.Empty:
                    pod = self._call(self.core.read_namespaced_pod, pod_name, self.namespace)
                    if pod.status.phase in ("Succeeded", "Failed"):
                        try:
                            while (line := lines.get(timeout=0.5)) is not None:
                                yield line
                        except queue.Empty:
                            pass
                        return
                    continue
                if line is None:
                    return
                yield line
        finally:
            # The reader thread sits in a blocking read on this connection: shut the socket down so that it
            # returns, then close (closing alone would wait for that read).
            sock = getattr(getattr(resp, "connection", None), "sock", None)
            with contextlib.suppress(Exception):
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(Exception):
                resp.close()

    @api_errors("reading the trainjob events")
    def get_job_events(self, name: str) -> list[Event]:
        """The cluster's events of the TrainJob, its JobSet, Jobs and pods, with one ``Restarted`` event per
        restart of a node's workers that its ended container recorded."""
        job, pods = self._read_job(name)
        names = {name, *(s.pod_name for s in job.steps)}
        events = []
        for pod in pods:
            if pod.metadata.name in names:
                events += restarts.events(self._step_name(pod), restart_records(pod))
        for ev in self._call(self.core.list_namespaced_event, self.namespace).items:
            obj = ev.involved_object
            if obj.kind not in ("TrainJob", "JobSet", "Job", "Pod"):
                continue
            if obj.name not in names and not (obj.kind == "Job" and obj.name.startswith(f"{name}-")):
                continue
            when = ev.event_time or ev.last_timestamp or ev.first_timestamp or ev.metadata.creation_timestamp
            events.append(
                Event(
                    involved_object_kind=obj.kind,
                    involved_object_name=obj.name,
                    message=ev.message or "",
                    reason=ev.reason or "",
                    event_time=when,
                )
            )
        return sorted(events, key=lambda e: e.event_time)

    @api_errors("reading the trainjob")
    def open_outputs(self, name: str, path: str = "") -> Iterator[OutputFile]:
        """The job's outputs from its ``OutputStorage`` (recorded on the TrainJob); refused, saying what is
        needed, for a job submitted without one."""
        from kubeflow_trainer_k8s.outputs import s3_outputs, storage_of

        obj = self._call(self.custom.get_namespaced_custom_object, GROUP, VERSION, self.namespace, "trainjobs", name)
        uri, endpoint_url = storage_of(obj)
        return s3_outputs(uri, endpoint_url, path)

    @api_errors("deletion of the trainjob")
    def delete_job(self, name: str) -> None:
        workspace: tuple[str | None, str] | None = None
        try:
            obj = self._call(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, self.namespace, "trainjobs", name
            )
            workspace = _workspace_of(obj)
        except ApiException as exc:
            if exc.status != 404:
                raise
        self._call(
            self.custom.delete_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            "trainjobs",
            name,
            propagation_policy="Background",
        )
        self._delete_secrets(name)  # also owned by the job; deleted here so no GC delay leaves them around
        if workspace is not None:
            self._release_workspace(name, workspace[0], workspace[1])

    def close(self) -> None:
        self.api_client.close()


def _workspace_of(obj: dict[str, Any]) -> tuple[str | None, str] | None:
    """(uid, workspace ConfigMap name) of a TrainJob that ships a workspace, else None."""
    for patch in (obj.get("spec") or {}).get("runtimePatches") or []:
        if patch.get("manager") != WORKSPACE_MANAGER:
            continue
        jobs = patch.get("trainingRuntimeSpec", {}).get("template", {}).get("spec", {}).get("replicatedJobs", [])
        for job in jobs:
            pod = job.get("template", {}).get("spec", {}).get("template", {}).get("spec", {})
            for volume in pod.get("volumes") or []:
                if (volume.get("configMap") or {}).get("name"):
                    return (obj.get("metadata") or {}).get("uid"), volume["configMap"]["name"]
    return None


def _parse_ts(value: str | None) -> datetime:
    if not value:
        return datetime.now(timezone.utc)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
