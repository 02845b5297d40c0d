"""The Hub stand-in, driven by the real ``huggingface_hub`` client (``snapshot_download``/``hf_hub_download``)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile

from .hub_standin import HubStandIn

MODEL_FILES = {
    "config.json": b'{"hidden_size": 8}\n',
    "README.md": b"# tiny model\n",
    "weights/model.bin": bytes(range(256)) * 64,
    "weights/extra/notes.txt": b"nested\n",
}
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
_counter = itertools.count()


@pytest.fixture(autouse=True)
def _direct_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to the stand-in must not go through a proxy, and the client must not be in offline mode."""
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubStandIn]:
    with HubStandIn(tmp_path / "hub") as standin:
        yield standin


def download(hub: HubStandIn, tmp_path: Path, repo_id: str, local_dir: Path | None = None, **kwargs: Any) -> Path:
    """``snapshot_download`` from the stand-in into a fresh folder (or ``local_dir``), with a private cache."""
    target = local_dir or tmp_path / f"out-{next(_counter)}"
    path = snapshot_download(repo_id, local_dir=target, cache_dir=tmp_path / "cache", endpoint=hub.url, **kwargs)
    return Path(path)


def tree(folder: Path) -> dict[str, bytes]:
    """The files under ``folder`` (without the client's ``.cache`` bookkeeping), by '/'-separated path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and ".cache" not in p.relative_to(folder).parts
    }


def test_model_repo_round_trip(hub: HubStandIn, tmp_path: Path) -> None:
    hub.add_repo("org/tiny-model", MODEL_FILES)
    out = tmp_path / "model"
    assert download(hub, tmp_path, "org/tiny-model", local_dir=out) == out.resolve()
    assert tree(out) == MODEL_FILES
    assert hub.downloads("org/tiny-model") == len(MODEL_FILES)
    assert ("GET", "/api/models/org/tiny-model/revision/main") in hub.requests

    # A second download finds every file up to date by its ETag and fetches no content again.
    download(hub, tmp_path, "org/tiny-model", local_dir=out)
    assert hub.downloads("org/tiny-model") == len(MODEL_FILES)


def test_dataset_repo_into_the_cache(hub: HubStandIn, tmp_path: Path) -> None:
    files = {"data/train.jsonl": b'{"x": 1}\n', "data/test.jsonl": b'{"x": 2}\n'}
    sha = hub.add_repo("tiny-set", files, repo_type="dataset")
    hub.add_repo("tiny-set", {"weights.bin": b"not the dataset"})  # a model with the same name stays apart
    path = snapshot_download(
        "tiny-set", repo_type="dataset", cache_dir=tmp_path / "cache", endpoint=hub.url, token=False
    )
    assert Path(path).name == sha
    assert Path(path).parent.parent.name == "datasets--tiny-set"
    assert tree(Path(path)) == files
    assert hub.downloads("tiny-set", "dataset") == 2 and hub.downloads("tiny-set", "model") == 0


@pytest.mark.parametrize("branch", ["v2", "refs/pr/1"])
def test_non_main_revision_by_branch_and_by_sha(hub: HubStandIn, tmp_path: Path, branch: str) -> None:
    hub.add_repo("org/model", {"config.json": b"main"})
    sha = hub.add_repo("org/model", {"config.json": b"other", "new.txt": b"only here"}, revision=branch)
    assert tree(download(hub, tmp_path, "org/model")) == {"config.json": b"main"}
    expected = {"config.json": b"other", "new.txt": b"only here"}
    assert tree(download(hub, tmp_path, "org/model", revision=branch)) == expected
    assert tree(download(hub, tmp_path, "org/model", revision=sha)) == expected


def test_allow_and_ignore_patterns(hub: HubStandIn, tmp_path: Path) -> None:
    hub.add_repo("org/tiny-model", MODEL_FILES)
    only_json = download(hub, tmp_path, "org/tiny-model", allow_patterns=["*.json"])
    assert set(tree(only_json)) == {"config.json"}
    no_weights = download(hub, tmp_path, "org/tiny-model", ignore_patterns=["weights/*"])
    assert set(tree(no_weights)) == {"config.json", "README.md"}
    both = download(hub, tmp_path, "org/tiny-model", allow_patterns=["weights/*"], ignore_patterns=["*.txt"])
    assert set(tree(both)) == {"weights/model.bin"}
    assert hub.downloads("org/tiny-model") == 4


def test_private_repo_needs_its_token(hub: HubStandIn, tmp_path: Path) -> None:
    hub.add_repo("org/private", {"secret.txt": b"s3cr3t"}, token="hf_right")
    assert tree(download(hub, tmp_path, "org/private", token="hf_right")) == {"secret.txt": b"s3cr3t"}

    with pytest.raises(RepositoryNotFoundError):
        download(hub, tmp_path, "org/private", token=False)
    # A token that is sent but wrong is a 401 "Invalid credentials"; clients before 0.3x wrap it in
    # LocalEntryNotFoundError (then a subclass of HfHubHTTPError) with the 401 as its cause.
    with pytest.raises(HfHubHTTPError) as excinfo:
        download(hub, tmp_path, "org/private", token="hf_wrong")
    assert "401" in f"{excinfo.value} {excinfo.value.__cause__}"
    assert hub.downloads("org/private") == 1


def test_missing_repo_revision_and_file(hub: HubStandIn, tmp_path: Path) -> None:
    hub.add_repo("org/model", {"config.json": b"{}"})
    with pytest.raises(RepositoryNotFoundError):
        download(hub, tmp_path, "org/nope")
    with pytest.raises(RepositoryNotFoundError):
        download(hub, tmp_path, "org/model", repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        download(hub, tmp_path, "org/model", revision="no-such-branch")
    with pytest.raises(EntryNotFoundError) as excinfo:
        hf_hub_download("org/model", "missing.json", cache_dir=tmp_path / "cache", endpoint=hub.url)
    assert not isinstance(excinfo.value, LocalEntryNotFoundError)


def test_hf_hub_download_and_range_requests(hub: HubStandIn, tmp_path: Path) -> None:
    hub.add_repo("org/tiny-model", MODEL_FILES)
    path = hf_hub_download("org/tiny-model", "weights/model.bin", cache_dir=tmp_path / "cache", endpoint=hub.url)
    assert Path(path).read_bytes() == MODEL_FILES["weights/model.bin"]

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"{hub.url}/org/tiny-model/resolve/main/README.md", headers={"Range": "bytes=2-"})
    with opener.open(request) as response:
        assert response.status == 206
        assert response.read() == MODEL_FILES["README.md"][2:]
        assert response.headers["Content-Range"] == f"bytes 2-{len(MODEL_FILES['README.md']) - 1}/13"


def test_tree_listing(hub: HubStandIn) -> None:
    hub.add_repo("org/tiny-model", MODEL_FILES)
    api = HfApi(endpoint=hub.url, token=False)
    top = {(type(e).__name__, e.path) for e in api.list_repo_tree("org/tiny-model")}
    assert top == {("RepoFile", "config.json"), ("RepoFile", "README.md"), ("RepoFolder", "weights")}
    nested = {e.path for e in api.list_repo_tree("org/tiny-model", path_in_repo="weights", recursive=True)}
    assert nested == {"weights/model.bin", "weights/extra", "weights/extra/notes.txt"}
    entries = api.list_repo_tree("org/tiny-model", recursive=True)
    sizes = {f.path: f.size for f in entries if isinstance(f, RepoFile)}
    assert sizes == {path: len(data) for path, data in MODEL_FILES.items()}


def test_hf_endpoint_environment_variable(hub: HubStandIn, tmp_path: Path) -> None:
    """``HF_ENDPOINT`` is read when ``huggingface_hub`` is imported, so this runs in a fresh interpreter."""
    sha = hub.add_repo("org/tiny-model", MODEL_FILES)
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS and not k.startswith("HF_")}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_TELEMETRY="1")
    code = "import sys, huggingface_hub as h; print(h.snapshot_download(sys.argv[1], allow_patterns=['*.json']))"
    result = subprocess.run(
        [sys.executable, "-c", code, "org/tiny-model"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    snapshot = Path(result.stdout.strip().splitlines()[-1])
    assert snapshot.name == sha and snapshot.is_relative_to(tmp_path / "hf-home")
    assert tree(snapshot) == {"config.json": MODEL_FILES["config.json"]}
    assert hub.url != constants.ENDPOINT  # this process was left alone
