"""Dataset and model initializer steps, backend-neutral.

:func:`plan_initializers` turns the user's :class:`~kubeflow_trainer.types.Initializer` into
:class:`InitializerStep` objects: what to fetch (a JSON-able source description without secrets), the
secrets as environment variables, the Python requirements the step needs, and the cache key. A backend runs
each step in the job's isolation (its own environment locally, a container on container engines) as
``python <workspace>/.kft/initializer.py <spec.json>``, with the spec from :meth:`InitializerStep.spec`
and :func:`runner_source` shipped as that file. Both steps run in parallel; the trainer nodes start only
when both succeeded.

The runner writes ``<status_dir>/<step>.ok`` or ``<step>.failed`` and ``<step>.json`` (a summary:
files, bytes, seconds, whether a cache was reused) when it ends; container backends gate the trainer on
these files, the local supervisor reads the summary for its events.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from kubeflow_trainer.errors import InvalidRequestError
from kubeflow_trainer.types import (
    DataCacheInitializer,
    HuggingFaceDatasetInitializer,
    HuggingFaceModelInitializer,
    Initializer,
    S3DatasetInitializer,
    S3ModelInitializer,
    UrlDatasetInitializer,
    UrlModelInitializer,
)

DATASET_STEP = "dataset-initializer"
MODEL_STEP = "model-initializer"
RUNNER_FILE = ".kft/initializer.py"
"""Workspace-relative path of the shipped runner."""
STATUS_DIR = ".kft/steps"
"""Workspace-relative directory of the steps' status files."""
DATASET_DIR_ENV = "KUBEFLOW_TRAINER_DATASET_DIR"
MODEL_DIR_ENV = "KUBEFLOW_TRAINER_MODEL_DIR"
HF_TOKEN_ENV = "KFT_INIT_HF_TOKEN"
S3_KEY_ENV = "KFT_INIT_S3_ACCESS_KEY_ID"
S3_SECRET_ENV = "KFT_INIT_S3_SECRET_ACCESS_KEY"
HF_REQUIREMENT = "huggingface_hub"
S3_REQUIREMENT = "boto3"


@dataclass(frozen=True)
class InitializerStep:
    """One initializer step of a job, ready for a backend to run."""

    step: str
    """``dataset-initializer`` or ``model-initializer``."""
    target: str
    """Sub-directory of the workspace it fills: ``dataset`` or ``model``."""
    source: dict[str, Any]
    """What to fetch, without secrets (JSON-able)."""
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    """Environment variables carrying credentials (never written to the workspace)."""
    requirements: tuple[str, ...] = ()
    """Python requirements of the runner for this source (installed when missing)."""
    cache: str | None = None
    """The user's cache name, or None."""
    local_path: str | None = None
    """For a local file/directory source: the path on the submitting machine."""

    @property
    def cache_key(self) -> str:
        """Identifies the source (not the credentials): same key, same content in a cache."""
        blob = json.dumps({"source": self.source, "target": self.target}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def spec(
        self,
        *,
        output: str,
        status_dir: str,
        cache_dir: str | None = None,
        source_path: str | None = None,
        pip_args: list[str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """The runner's input for this step, with the paths as the step sees them.

        ``source_path`` replaces the local path of a file source (e.g. where a container mounts it);
        ``timeout`` (seconds) fails the step when it takes longer.
        """
        source = dict(self.source)
        if self.local_path is not None:
            source["path"] = source_path or self.local_path
        return {
            "step": self.step,
            "source": source,
            "output": output,
            "status_dir": status_dir,
            "cache_dir": cache_dir if self.cache else None,
            "cache_name": self.cache,
            "cache_key": self.cache_key,
            "requirements": list(self.requirements),
            "pip_args": list(pip_args or []),
            "timeout": timeout,
        }

    def describe(self) -> str:
        """A one-line, secret-free description of the source for messages."""
        src = self.source
        if src["type"] == "hf":
            return f"hf://{src['repo_id']}" + (f"@{src['revision']}" if src.get("revision") else "")
        if src["type"] == "s3":
            return f"s3://{src['bucket']}/{src['prefix']}"
        return str(src.get("url") or self.local_path)


def runner_source() -> str:
    """The text of the standalone runner shipped into the workspace as :data:`RUNNER_FILE`."""
    return resources.files("kubeflow_trainer.initializers").joinpath("runner.py").read_text(encoding="utf-8")


def plan_initializers(
    initializer: Initializer | None, environ: Mapping[str, str] | None = None
) -> list[InitializerStep]:
    """The steps for ``initializer`` (dataset first). ``environ`` supplies ``HF_ENDPOINT`` (default: os.environ).

    Raises InvalidRequestError for an initializer this runner cannot execute (the data cache, which needs
    a Kubernetes data-cache cluster).
    """
    if initializer is None:
        return []
    env = os.environ if environ is None else environ
    steps = []
    if initializer.dataset is not None:
        steps.append(_step(DATASET_STEP, "dataset", initializer.dataset, env))
    if initializer.model is not None:
        steps.append(_step(MODEL_STEP, "model", initializer.model, env))
    return steps


def _step(step: str, target: str, init: Any, env: Mapping[str, str]) -> InitializerStep:
    if isinstance(init, (HuggingFaceDatasetInitializer, HuggingFaceModelInitializer)):
        parts = init.storage_uri[len("hf://") :].strip("/").split("/")
        repo_id, path = "/".join(parts[:2]), "/".join(parts[2:])
        allow = list(init.allow_patterns) if init.allow_patterns else None
        if path and allow is None:
            allow = [path, f"{path}/*"]
        source: dict[str, Any] = {
            "type": "hf",
            "repo_id": repo_id,
            "repo_type": "dataset" if target == "dataset" else "model",
            "revision": init.revision,
            "allow_patterns": allow,
            "ignore_patterns": list(init.ignore_patterns) if init.ignore_patterns else None,
            "endpoint": (init.endpoint or env.get("HF_ENDPOINT") or "").rstrip("/") or None,
        }
        secrets = {HF_TOKEN_ENV: init.access_token} if init.access_token else {}
        return InitializerStep(step, target, source, secrets, (HF_REQUIREMENT,), init.cache)
    if isinstance(init, (S3DatasetInitializer, S3ModelInitializer)):
        bucket, _, prefix = init.storage_uri[len("s3://") :].partition("/")
        source = {
            "type": "s3",
            "bucket": bucket,
            "prefix": prefix,
            "endpoint": init.endpoint,
            "region": init.region,
            "role_arn": init.role_arn,
            "ignore_patterns": list(init.ignore_patterns) if init.ignore_patterns else None,
        }
        if bool(init.access_key_id) != bool(init.secret_access_key):
            raise InvalidRequestError(
                f"{type(init).__name__}: give both access_key_id and secret_access_key, or neither "
                "(then the step uses its AWS credential chain)"
            )
        secrets = {}
        if init.access_key_id and init.secret_access_key:
            secrets = {S3_KEY_ENV: init.access_key_id, S3_SECRET_ENV: init.secret_access_key}
        return InitializerStep(step, target, source, secrets, (S3_REQUIREMENT,), init.cache)
    if isinstance(init, (UrlDatasetInitializer, UrlModelInitializer)):
        uri = init.storage_uri
        if uri.startswith(("http://", "https://")):
            source = {"type": "url", "url": uri, "sha256": init.sha256, "unpack": init.unpack}
            return InitializerStep(step, target, source, {}, (), init.cache)
        path = os.path.abspath(uri[len("file://") :] if uri.startswith("file://") else uri)
        if not os.path.exists(path):
            raise InvalidRequestError(
                f"{type(init).__name__}: {path} does not exist; give an existing file or directory"
            )
        identity = {"type": "path", "path": path, "sha256": init.sha256, "unpack": init.unpack}
        return InitializerStep(step, target, identity, {}, (), init.cache, local_path=path)
    if isinstance(init, DataCacheInitializer):
        raise InvalidRequestError(
            "DataCacheInitializer serves data from a Kubeflow data-cache cluster and runs only on the "
            "kubernetes backend; use an S3, Hugging Face or URL initializer here"
        )
    raise InvalidRequestError(f"unknown initializer type {type(init).__name__}")


def node_env(steps: list[InitializerStep], workspace: str) -> dict[str, str]:
    """The variables that tell the training function where the initialized data is."""
    env = {}
    for step in steps:
        name = DATASET_DIR_ENV if step.target == "dataset" else MODEL_DIR_ENV
        env[name] = f"{workspace.rstrip('/')}/{step.target}"
    return env
