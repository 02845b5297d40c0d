"""Dataset and model initializers end to end on local, Docker and Podman (KEP-2 Story 2).

Sources are real servers started here: moto's S3-compatible server (with authentication), a plain HTTP
server, and a stand-in for the Hugging Face Hub (tests/support/hub_standin.py, reached through
``HF_ENDPOINT`` exactly as the Hub would be; no network to the real Hub exists here). The training function
(``kubeflow_trainer.testing.jobs.tree_job``) prints a digest of what it finds in the dataset and model
directories, which the test compares with the digest of what it served.
"""

from __future__ import annotations

import io
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import config_for, engine_objects, require_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.hub_standin import HubStandIn
from support.servers import FileServer, S3Server, host_address

from kubeflow_trainer import (
    CustomTrainer,
    HuggingFaceDatasetInitializer,
    HuggingFaceModelInitializer,
    Initializer,
    InvalidRequestError,
    JobFailedError,
    Name,
    S3DatasetInitializer,
    TrainerClient,
    UrlModelInitializer,
)
from kubeflow_trainer.initializers import DATASET_DIR_ENV, MODEL_DIR_ENV
from kubeflow_trainer.testing.jobs import tree_digest, tree_job

DATASET = {"train.jsonl": b'{"x": 1}\n{"x": 2}\n', "val/part-0.jsonl": b'{"x": 3}\n', "README.md": b"# data\n"}
MODEL_FILES = {"config.json": b'{"layers": 2}', "weights/model.safetensors": bytes(range(256)) * 64}
TIMEOUT = 300
TRICKLE_BYTES = 6_000_000


def model_tarball() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, data in MODEL_FILES.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture(autouse=True)
def no_proxy_for_test_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps on this machine (local backend) inherit the environment: keep a proxy away from the servers."""
    direct = f"127.0.0.1,localhost,{host_address()}"
    monkeypatch.setenv("NO_PROXY", direct)
    monkeypatch.setenv("no_proxy", direct)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server() as server:
        server.put_tree("datasets", "e2e/v1", DATASET)
        server.put_tree("datasets", "e2e/v1-noise", {"other.txt": b"not this"})
        yield server


@pytest.fixture(scope="module")
def files() -> Iterator[FileServer]:
    served = {
        "/models/m.tar.gz": model_tarball(),
        "/models/raw.bin": b"raw",
        "/models/slow.bin": b"slow",
        "/models/trickle.bin": bytes(TRICKLE_BYTES),
    }
    rates = {"/models/trickle.bin": TRICKLE_BYTES // 6}  # about 6 s to download
    with FileServer(served, delays={"/models/slow.bin": 20}, rates=rates) as server:
        yield server


@pytest.fixture(params=["local", "docker", "podman"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, TrainerClient, str]]:
    """(backend name, client, the address at which its steps reach this machine's servers)."""
    name = str(request.param)
    if name == "local":
        from kubeflow_trainer_local import LocalProcessBackendConfig

        config = LocalProcessBackendConfig(state_dir=str(tmp_path / "state"), data_cache_dir=str(tmp_path / "data"))
        host = "127.0.0.1"
    else:
        require_engine(name)
        config = config_for(name)
        host = host_address()
    with TrainerClient(config) as client:
        yield name, client, host


def s3_dataset(s3: S3Server, host: str, **overrides: object) -> S3DatasetInitializer:
    fields: dict[str, object] = {
        "storage_uri": "s3://datasets/e2e/v1/",
        "endpoint": s3.endpoint(host),
        "access_key_id": s3.access_key,
        "secret_access_key": s3.secret_key,
        "region": "us-east-1",
        **overrides,
    }
    return S3DatasetInitializer(**fields)  # type: ignore[arg-type]


def trainer() -> CustomTrainer:
    return CustomTrainer(func=tree_job, func_args={"variables": [DATASET_DIR_ENV, MODEL_DIR_ENV]})


def tree_lines(client: TrainerClient, name: str) -> list[str]:
    return [line for line in client.get_job_logs(name, step="node-0") if line.startswith("TREE")]


def assert_nothing_left(backend: str, client: TrainerClient, names: list[str]) -> None:
    if backend == "local":
        jobs_dir = Path(client.backend.config.state_dir) / "jobs"  # type: ignore[attr-defined]
        assert not [n for n in names if (jobs_dir / n).exists()]
        import psutil

        for proc in psutil.process_iter(["cmdline"]):
            cmd = " ".join(proc.info["cmdline"] or [])
            assert not any(n in cmd for n in names), cmd
        return
    containers, networks, volumes = engine_objects(backend)
    leftovers = {x for x in containers | networks | volumes if any(n in x for n in names)}
    assert not leftovers, leftovers


def test_s3_dataset_and_http_model_reach_the_training_function(backend, s3, files):
    name_, client, host = backend
    job = f"init-ok-{uuid.uuid4().hex[:6]}"
    digest_before = files.gets.get("/models/m.tar.gz", 0)
    client.train(
        trainer=trainer(),
        initializer=Initializer(
            dataset=s3_dataset(s3, host),
            model=UrlModelInitializer(storage_uri=files.url("/models/m.tar.gz", host), unpack=True),
        ),
        options=[Name(job)],
    )
    try:
        result = client.wait_for_job_status(job, timeout=TIMEOUT, polling_interval=0.5)
        assert [(s.name, s.status) for s in result.steps] == [
            ("dataset-initializer", "Complete"),
            ("model-initializer", "Complete"),
            ("node-0", "Complete"),
        ]
        assert tree_lines(client, job) == [
            f"TREE {DATASET_DIR_ENV} {tree_digest(DATASET)}",
            f"TREE {MODEL_DIR_ENV} {tree_digest(MODEL_FILES)}",
        ]
        assert files.gets["/models/m.tar.gz"] == digest_before + 1
        dataset_log = list(client.get_job_logs(job, step="dataset-initializer"))
        assert any("fetched 3 of 3 objects under s3://datasets/e2e/v1/" in line for line in dataset_log), dataset_log
        # kept after success, with events, until the job is deleted
        deadline = time.monotonic() + 10  # an engine may record the last events a moment after the exit
        objects: set[str] = set()
        while not {"dataset-initializer", "model-initializer"} <= objects and time.monotonic() < deadline:
            objects = {e.involved_object_name for e in client.get_job_events(job)}
            time.sleep(0.2)
        assert {"dataset-initializer", "model-initializer"} <= objects, objects
    finally:
        client.delete_job(job)
    assert_nothing_left(name_, client, [job])


def test_hugging_face_repositories_through_hf_endpoint(backend, tmp_path, monkeypatch):
    """Stand-in for the Hub (see tests/support/hub_standin.py); the initializers name no endpoint, so the
    submitting process's HF_ENDPOINT decides where they download from."""
    name_, client, host = backend
    with HubStandIn(tmp_path / "hub", host="0.0.0.0") as hub:
        hub.add_repo("org/tiny-model", {"config.json": b"{}", "model.safetensors": b"S" * 1000, "old.bin": b"B"})
        hub.add_repo("org/tiny-model", {"config.json": b'{"v": 2}', "model.safetensors": b"T" * 10}, revision="v2")
        hub.add_repo(
            "org/tiny-data",
            {"data/train.csv": b"a,b\n1,2\n", "data/test.csv": b"a,b\n3,4\n", "docs/card.md": b"card"},
            repo_type="dataset",
            token="hf_secret",
        )
        monkeypatch.setenv("HF_ENDPOINT", f"http://{host}:{hub.port}")
        job = f"init-hf-{uuid.uuid4().hex[:6]}"
        client.train(
            trainer=trainer(),
            initializer=Initializer(
                dataset=HuggingFaceDatasetInitializer(
                    storage_uri="hf://org/tiny-data", allow_patterns=["data/*"], access_token="hf_secret"
                ),
                model=HuggingFaceModelInitializer(storage_uri="hf://org/tiny-model", revision="v2"),
            ),
            options=[Name(job)],
        )
        try:
            client.wait_for_job_status(job, timeout=TIMEOUT, polling_interval=0.5)
            assert tree_lines(client, job) == [
                f"TREE {DATASET_DIR_ENV} "
                + tree_digest({"data/train.csv": b"a,b\n1,2\n", "data/test.csv": b"a,b\n3,4\n"}),
                f"TREE {MODEL_DIR_ENV} " + tree_digest({"config.json": b'{"v": 2}', "model.safetensors": b"T" * 10}),
            ]
            assert hub.downloads("org/tiny-data") == 2 and hub.downloads("org/tiny-model") == 2
        finally:
            client.delete_job(job)
        assert_nothing_left(name_, client, [job])


def test_bad_sources_fail_the_step_and_never_start_the_trainer(backend, s3, files):
    name_, client, host = backend
    closed = f"http://{host}:9"
    cases = {
        "creds": (s3_dataset(s3, host, secret_access_key="wrong"), "rejected the credentials"),
        "missing": (s3_dataset(s3, host, storage_uri="s3://datasets/no/such/prefix"), "no objects under"),
        "unreach": (s3_dataset(s3, host, endpoint=closed), "cannot reach"),
    }
    names = {case: f"init-{case}-{uuid.uuid4().hex[:6]}" for case in cases}
    for case, (dataset, _) in cases.items():  # all three at once
        client.train(
            trainer=trainer(),
            initializer=Initializer(
                dataset=dataset, model=UrlModelInitializer(storage_uri=files.url("/models/raw.bin", host))
            ),
            options=[Name(names[case])],
        )
    try:
        for case, (_, expected) in cases.items():
            job = names[case]
            with pytest.raises(JobFailedError):
                client.wait_for_job_status(job, timeout=TIMEOUT, polling_interval=0.5)
            result = client.get_job(job)
            steps = {s.name: s for s in result.steps}
            assert steps["dataset-initializer"].status == "Failed"
            assert expected in (steps["dataset-initializer"].message or ""), (case, result.steps)
            assert expected in (result.message or ""), (case, result.message)
            assert "not started" in (steps["node-0"].message or ""), (case, result.steps)
            log = list(client.get_job_logs(job, step="dataset-initializer"))
            assert any(expected in line for line in log), (case, log)
            assert tree_lines(client, job) == [], f"{case}: the trainer ran"
    finally:
        for job in names.values():
            client.delete_job(job)
    assert_nothing_left(name_, client, list(names.values()))


def test_hugging_face_failures_say_what_is_wrong(backend, tmp_path):
    """Stand-in Hub again: a wrong token, a revision that does not exist, an endpoint nobody listens on."""
    name_, client, host = backend
    with HubStandIn(tmp_path / "hub", host="0.0.0.0") as hub:
        hub.add_repo("org/private", {"data.csv": b"a\n"}, repo_type="dataset", token="hf_right")
        hub.add_repo("org/public", {"config.json": b"{}"}, repo_type="dataset")
        endpoint = f"http://{host}:{hub.port}"
        cases = {
            "token": (
                HuggingFaceDatasetInitializer(
                    storage_uri="hf://org/private", endpoint=endpoint, access_token="hf_wrong"
                ),
                "rejected the credentials",
            ),
            "revision": (
                HuggingFaceDatasetInitializer(storage_uri="hf://org/public", endpoint=endpoint, revision="nope"),
                "revision 'nope'",
            ),
            "unreach": (
                HuggingFaceDatasetInitializer(storage_uri="hf://org/public", endpoint=f"http://{host}:9"),
                "cannot reach",
            ),
        }
        names = {case: f"init-hf{case}-{uuid.uuid4().hex[:6]}" for case in cases}
        for case, (dataset, _) in cases.items():
            client.train(trainer=trainer(), initializer=Initializer(dataset=dataset), options=[Name(names[case])])
        try:
            for case, (_, expected) in cases.items():
                with pytest.raises(JobFailedError, match=expected):
                    client.wait_for_job_status(names[case], timeout=TIMEOUT, polling_interval=0.5)
                assert tree_lines(client, names[case]) == [], f"{case}: the trainer ran"
        finally:
            for job in names.values():
                client.delete_job(job)
        assert_nothing_left(name_, client, list(names.values()))


def test_dry_runs_show_the_steps_but_no_credentials(backend, s3):
    name_, client, host = backend
    result = client.dry_run(
        trainer=trainer(),
        initializer=Initializer(
            dataset=s3_dataset(s3, host),
            model=HuggingFaceModelInitializer(storage_uri="hf://org/m", access_token="hf_very_secret"),
        ),
        options=[Name("init-dry")],
    )
    text = result.request.model_dump_json() + repr(result.request)
    assert s3.secret_key not in text and "hf_very_secret" not in text
    assert "dataset-initializer" in text and "model-initializer" in text
    assert_nothing_left(name_, client, ["init-dry"])


def test_initializer_timeout_fails_a_slow_step(backend, files, tmp_path):
    name_, _client, host = backend
    if name_ == "local":
        from kubeflow_trainer_local import LocalProcessBackendConfig

        config = LocalProcessBackendConfig(state_dir=str(tmp_path / "state2"), initializer_timeout=2)
    else:
        config = config_for(name_, initializer_timeout=2)
    with TrainerClient(config) as slow_client:
        job = f"init-slow-{uuid.uuid4().hex[:6]}"
        slow_client.train(
            trainer=trainer(),
            initializer=Initializer(model=UrlModelInitializer(storage_uri=files.url("/models/slow.bin", host))),
            options=[Name(job)],
        )
        try:
            with pytest.raises(JobFailedError, match="did not finish within 2s"):
                slow_client.wait_for_job_status(job, timeout=TIMEOUT, polling_interval=0.5)
            assert tree_lines(slow_client, job) == []
        finally:
            slow_client.delete_job(job)
        assert_nothing_left(name_, slow_client, [job])


def test_a_named_cache_is_reused_instead_of_downloading_again(backend, files):
    _name, client, host = backend
    cache = f"e2e-{uuid.uuid4().hex[:8]}"
    url = files.url("/models/m.tar.gz", host)
    before = files.gets.get("/models/m.tar.gz", 0)
    logs = []
    try:
        for attempt in range(2):
            job = f"init-cache{attempt}-{uuid.uuid4().hex[:6]}"
            client.train(
                trainer=CustomTrainer(func=tree_job, func_args={"variables": [MODEL_DIR_ENV]}),
                initializer=Initializer(model=UrlModelInitializer(storage_uri=url, unpack=True, cache=cache)),
                options=[Name(job)],
            )
            client.wait_for_job_status(job, timeout=TIMEOUT, polling_interval=0.5)
            assert tree_lines(client, job) == [f"TREE {MODEL_DIR_ENV} {tree_digest(MODEL_FILES)}"]
            logs.append(list(client.get_job_logs(job, step="model-initializer")))
            client.delete_job(job)
        assert files.gets["/models/m.tar.gz"] == before + 1, "the second job downloaded again"
        assert not any("reusing cache" in line for line in logs[0]), logs[0]
        assert any(f"reusing cache {cache!r}" in line for line in logs[1]), logs[1]
    finally:
        client.backend.delete_cache(cache)  # type: ignore[attr-defined]
    with pytest.raises(InvalidRequestError, match="no initializer cache"):
        client.backend.delete_cache(cache)  # type: ignore[attr-defined]


def test_a_download_shows_its_bytes_and_files_while_the_step_runs(backend, files, capfd, monkeypatch):
    """The initializer runner's progress lines reach ``TrainJob.preparation`` (bytes fetched of the total, the
    files in the detail) while the step runs, and the progress display of ``wait_for_job_status`` shows them."""
    name_, client, host = backend
    monkeypatch.setenv("KUBEFLOW_TRAINER_PROGRESS", "plain")
    name = client.train(
        initializer=Initializer(model=UrlModelInitializer(storage_uri=files.url("/models/trickle.bin", host))),
        trainer=trainer(),
        options=[Name(f"init-progress-{uuid.uuid4().hex[:6]}")],
    )
    seen = []
    waited: list[Any] = []
    waiter = threading.Thread(
        target=lambda: waited.append(client.wait_for_job_status(name, timeout=TIMEOUT, polling_interval=0.3))
    )
    waiter.start()  # shows the progress display (plain lines on stderr) while this thread polls get_job
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            job = client.get_job(name)
            if job.preparation is not None and job.preparation.unit == "bytes":
                seen.append(job.preparation)
            if job.status in ("Complete", "Failed") or any(
                s.name == "model-initializer" and s.status in ("Complete", "Failed") for s in job.steps
            ):
                break
            time.sleep(0.3)
        assert any(0 < p.done < TRICKLE_BYTES and p.total == TRICKLE_BYTES for p in seen if p.done), seen
        assert all("model-initializer: " in p.detail and " files" in p.detail for p in seen), seen
        waiter.join(TIMEOUT)
        assert waited and waited[0].status == "Complete", waited and waited[0].message
        shown = [x for x in capfd.readouterr().err.splitlines() if f"[{name}] initializing: " in x]
        assert any(x.endswith("/6.0 MB (model-initializer: 0/1 files)") for x in shown), shown
        print(f"{name_}: {len(seen)} byte counts seen, e.g. {seen[len(seen) // 2].describe()}")
    finally:
        client.delete_job(name)
