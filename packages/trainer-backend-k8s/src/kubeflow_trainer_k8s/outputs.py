"""Reading a TrainJob's outputs back from its ``OutputStorage`` (S3-compatible), with boto3 (imported on use).

The pods upload ``$KUBEFLOW_TRAINER_OUTPUT_DIR`` to ``<uri>/<job>/`` (``run_train.py``); the TrainJob's
annotation records that URI and the endpoint. Objects are streamed (``get_object``'s body, read in chunks by
the download routine), never held whole in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from kubeflow_trainer.errors import BackendError, InvalidRequestError, UnsupportedFeatureError
from kubeflow_trainer.outputs import OutputFile
from kubeflow_trainer_k8s.render import OUTPUTS_ANNOTATION


def storage_of(job: dict[str, Any]) -> tuple[str, str | None]:
    """The (uri, endpoint_url) a TrainJob's outputs were uploaded to; UnsupportedFeatureError saying what is
    needed when it was submitted without ``OutputStorage``."""
    name = job.get("metadata", {}).get("name", "")
    raw = (job.get("metadata", {}).get("annotations") or {}).get(OUTPUTS_ANNOTATION)
    if not raw:
        raise UnsupportedFeatureError(
            f"TrainJob {name!r} was submitted without OutputStorage, so its outputs were lost with its pods; "
            "submit with options=[OutputStorage('s3://<bucket>/<prefix>')] to get them back with get_job_outputs",
            backend="kubernetes",
            missing=("outputs",),
        )
    record = json.loads(raw)
    return str(record["uri"]), record.get("endpoint_url")


def s3_outputs(uri: str, endpoint_url: str | None, sub_path: str) -> Iterator[OutputFile]:
    """The objects under ``uri`` (only those under ``sub_path`` when given), as :class:`OutputFile` streams."""
    try:
        import boto3
        import botocore.exceptions
    except ImportError as exc:
        raise InvalidRequestError(
            f"reading outputs from {uri} needs boto3 on this machine: pip install boto3 ({exc})"
        ) from exc
    # A session per call: credentials are resolved now (boto3's default session would keep the first ones).
    s3 = boto3.session.Session().client("s3", endpoint_url=endpoint_url)
    return _objects(s3, botocore.exceptions, uri, endpoint_url, sub_path)


def _objects(s3: Any, errors: Any, uri: str, endpoint_url: str | None, sub_path: str) -> Iterator[OutputFile]:
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    base = f"{prefix}/" if prefix else ""
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base + sub_path)
        for page in pages:
            for entry in page.get("Contents", []):
                rel = entry["Key"][len(base) :]
                if sub_path and rel != sub_path and not rel.startswith(sub_path.rstrip("/") + "/"):
                    continue  # a sibling that only shares the prefix (ckpt-old for ckpt)
                if not rel or rel.endswith("/"):
                    continue
                body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"]
                try:
                    yield OutputFile(rel, body, int(entry.get("Size", 0)))
                finally:
                    body.close()
    except (errors.BotoCoreError, errors.ClientError) as exc:
        raise BackendError(
            f"could not read the outputs at {uri}{' (' + endpoint_url + ')' if endpoint_url else ''}: {exc}; check "
            "this machine's S3 credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile) and the bucket"
        ) from exc
