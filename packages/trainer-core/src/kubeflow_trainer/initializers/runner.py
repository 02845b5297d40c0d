"""Runs one dataset or model initializer step inside the job's isolation (a container, or the job's own
environment on the local backend). Standard library only, plus the client library of the source
(``huggingface_hub`` or ``boto3``), installed with pip when the interpreter lacks it.

Shipped into the job's workspace as ``.kft/initializer.py`` and run as ``python initializer.py <spec.json>``.
The spec (see ``kubeflow_trainer.initializers.InitializerStep.spec``) names the source, the output directory,
the status directory and an optional cache; credentials arrive as ``KFT_INIT_*`` environment variables.

While it downloads it prints ``[<step>] progress: <files>[/<total>] files, <bytes>[/<total>] bytes`` at most
once a second and once at the end (totals where the source says them: S3 listings, Content-Length, the size of
a copied tree); backends read the last such line of a running step into ``TrainJob.preparation``
(``kubeflow_trainer.preparation.initializer_progress``).

Exit code 0 on success, 1 on failure with one ``[<step>] error: ...`` line saying what was wrong and how to
fix it. At the end it writes ``<status_dir>/<step>.ok`` or ``<step>.failed`` and ``<step>.json``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

COMPLETE_MARKER = ".kft-complete"


class InitError(Exception):
    """A failure with a message meant for the user."""


PROGRESS_EVERY = 1.0
"""Seconds between two progress lines."""


class Progress:
    """Files and bytes fetched so far, and the totals once known; prints a progress line at most once every
    :data:`PROGRESS_EVERY` seconds (thread-safe: boto3 reports bytes from its transfer threads)."""

    def __init__(self, step: Step) -> None:
        self.step = step
        self.files = self.bytes = 0
        self.files_total: int | None = None
        self.bytes_total: int | None = None
        self._lock = threading.Lock()
        self._shown = 0.0

    def expect(self, files: int | None, size: int | None) -> None:
        with self._lock:
            self.files_total, self.bytes_total = files, size
        self.show(force=True)

    def add(self, size: int = 0, files: int = 0) -> None:
        with self._lock:
            self.bytes += size
            self.files += files
        self.show()

    def measure(self, root: str, force: bool = False) -> None:
        """Take the files and bytes under ``root`` as the progress (a client that reports nothing itself)."""
        files, size = tree_size(root)
        with self._lock:
            self.files, self.bytes = files, size
        self.show(force)

    def finish(self, files: int, size: int) -> None:
        """The last line: all of it."""
        with self._lock:
            self.files = self.files_total = files
            self.bytes = self.bytes_total = size
        self.show(force=True)

    def show(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._shown < PROGRESS_EVERY:
                return
            self._shown = now
            files = f"{self.files}/{self.files_total}" if self.files_total is not None else str(self.files)
            size = f"{self.bytes}/{self.bytes_total}" if self.bytes_total is not None else str(self.bytes)
        self.step.log(f"progress: {files} files, {size} bytes")


class Step:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.name = spec["step"]
        self.source = spec["source"]
        self.progress = Progress(self)

    def log(self, message: str) -> None:
        print(f"[{self.name}] {message}", flush=True)

    # Entry -------------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        output = self.spec["output"]
        os.makedirs(output, exist_ok=True)
        cache_dir = self.spec.get("cache_dir")
        started = time.monotonic()
        result: dict[str, Any] = {"cache": None}
        if cache_dir:
            name, key = self.spec["cache_name"], self.spec["cache_key"]
            entry = os.path.join(cache_dir, key)
            if os.path.exists(os.path.join(entry, COMPLETE_MARKER)):
                self.log(f"reusing cache {name!r} (entry {key}): {self.describe()} is not downloaded again")
                result["cache"] = "reused"
                self.progress = Progress(self)  # the copy out of the cache is what runs now
            else:
                self.log(f"cache {name!r} has no entry {key} yet: downloading {self.describe()}")
                self.progress.show(force=True)
                partial = f"{entry}.partial-{uuid.uuid4().hex[:8]}"
                os.makedirs(os.path.join(partial, "data"))
                try:
                    self.fetch(os.path.join(partial, "data"))
                    with open(os.path.join(partial, COMPLETE_MARKER), "w") as fh:
                        json.dump({"source": self.describe(), "time": time.time()}, fh)
                    try:
                        os.rename(partial, entry)
                    except OSError:  # another job stored the same entry meanwhile: use that one
                        pass
                finally:
                    shutil.rmtree(partial, ignore_errors=True)
                result["cache"] = "stored"
            self.copy_with_progress(os.path.join(entry, "data"), output)
        else:
            verb = "copying" if self.source["type"] == "path" else "downloading"
            self.log(f"{verb} {self.describe()} to {output}")
            self.fetch(output)
        files, size = tree_size(output)
        self.progress.finish(files, size)
        if files == 0:
            raise InitError(f"{self.describe()} gave no files; check storage_uri and the patterns")
        result.update(files=files, bytes=size, seconds=round(time.monotonic() - started, 3))
        self.log(f"done: {files} files, {size} bytes in {result['seconds']:.2f}s -> {output}")
        return result

    def describe(self) -> str:
        src = self.source
        if src["type"] == "hf":
            rev = f"@{src['revision']}" if src.get("revision") else ""
            return f"hf://{src['repo_id']}{rev} ({src['repo_type']}) from {src.get('endpoint') or 'the Hub'}"
        if src["type"] == "s3":
            return f"s3://{src['bucket']}/{src['prefix']}" + (f" at {src['endpoint']}" if src.get("endpoint") else "")
        return str(src.get("url") or src.get("path"))

    def fetch(self, dest: str) -> None:
        kind = self.source["type"]
        if kind == "hf":
            self.fetch_hf(dest)
        elif kind == "s3":
            self.fetch_s3(dest)
        elif kind == "url":
            self.fetch_url(dest)
        elif kind == "path":
            self.fetch_path(dest)
        else:
            raise InitError(f"unknown source type {kind!r}")

    def need(self, module: str, requirement: str) -> Any:
        try:
            return importlib.import_module(module)
        except ImportError:
            pass
        self.log(f"{requirement} is not installed here: installing it with pip")
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if subprocess.call([*cmd, *self.spec.get("pip_args", []), requirement]) != 0:
            raise InitError(
                f"could not install {requirement}; use an image that has it (the backend config's "
                f"initializer_image) or make a package index reachable"
            )
        importlib.invalidate_caches()
        return importlib.import_module(module)

    # Hugging Face ------------------------------------------------------------------------------------
    def fetch_hf(self, dest: str) -> None:
        src = self.source
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        if src.get("endpoint"):
            os.environ["HF_ENDPOINT"] = src["endpoint"]  # read at import by older clients
        hub = self.need("huggingface_hub", "huggingface_hub")
        errors = getattr(hub, "errors", None) or importlib.import_module("huggingface_hub.utils")
        where = src.get("endpoint") or "the Hugging Face Hub"
        repo = f"{src['repo_type']} repository {src['repo_id']!r}"
        stop = threading.Event()

        def watch() -> None:  # the Hub client reports nothing we can read: measure what it wrote
            while not stop.wait(PROGRESS_EVERY):
                try:
                    self.progress.measure(dest)
                except OSError:  # a file renamed under the walk
                    pass

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            hub.snapshot_download(
                repo_id=src["repo_id"],
                repo_type=src["repo_type"],
                revision=src.get("revision"),
                allow_patterns=src.get("allow_patterns"),
                ignore_patterns=src.get("ignore_patterns"),
                token=os.environ.get("KFT_INIT_HF_TOKEN") or None,
                local_dir=dest,
                cache_dir=os.path.join(dest, ".cache", "kft-hub"),  # nothing written outside the job
                endpoint=src.get("endpoint"),
            )
        except getattr(errors, "GatedRepoError", ()) as exc:
            raise InitError(f"{repo} on {where} is gated: accept its terms and pass access_token ({exc})") from exc
        except getattr(errors, "RepositoryNotFoundError", ()) as exc:
            raise InitError(
                f"{repo} was not found on {where} or the token may not read it: check storage_uri and "
                f"access_token ({first_line(exc)})"
            ) from exc
        except getattr(errors, "RevisionNotFoundError", ()) as exc:
            raise InitError(f"revision {src.get('revision')!r} of {repo} does not exist: check revision") from exc
        except getattr(errors, "LocalEntryNotFoundError", ()) as exc:
            raise InitError(
                f"cannot reach {where} to download {repo}: check the endpoint (HF_ENDPOINT) and the "
                f"network ({first_line(exc)})"
            ) from exc
        except getattr(errors, "EntryNotFoundError", ()) as exc:
            raise InitError(f"a file of {repo} is missing: {first_line(exc)}") from exc
        except getattr(errors, "HfHubHTTPError", ()) as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status in (401, 403):
                raise InitError(
                    f"{where} rejected the credentials for {repo} (HTTP {status}): check access_token"
                ) from exc
            raise InitError(f"{where} refused the download of {repo}: {first_line(exc)}") from exc
        except OSError as exc:
            raise InitError(f"cannot download {repo} from {where}: {first_line(exc)}") from exc
        finally:
            stop.set()
            watcher.join()
        shutil.rmtree(os.path.join(dest, ".cache"), ignore_errors=True)  # the client's local_dir metadata

    # S3 -------------------------------------------------------------------------------------------------
    def fetch_s3(self, dest: str) -> None:
        src = self.source
        boto3 = self.need("boto3", "boto3")
        from botocore.config import Config
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        where = src.get("endpoint") or "AWS S3"
        bucket, prefix = src["bucket"], src["prefix"]
        uri = f"s3://{bucket}/{prefix}"
        session = boto3.session.Session(
            aws_access_key_id=os.environ.get("KFT_INIT_S3_ACCESS_KEY_ID") or None,
            aws_secret_access_key=os.environ.get("KFT_INIT_S3_SECRET_ACCESS_KEY") or None,
            region_name=src.get("region") or None,
        )
        config = Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 4, "mode": "standard"})
        try:
            if src.get("role_arn"):
                sts = session.client("sts", endpoint_url=src.get("endpoint") or None, config=config)
                creds = sts.assume_role(RoleArn=src["role_arn"], RoleSessionName="kubeflow-trainer-initializer")
                c = creds["Credentials"]
                session = boto3.session.Session(
                    aws_access_key_id=c["AccessKeyId"],
                    aws_secret_access_key=c["SecretAccessKey"],
                    aws_session_token=c["SessionToken"],
                    region_name=src.get("region") or None,
                )
            client = session.client("s3", endpoint_url=src.get("endpoint") or None, config=config)
            keys: list[str] = []
            sizes: dict[str, int] = {}
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    keys.append(obj["Key"])
                    sizes[obj["Key"]] = int(obj.get("Size") or 0)
            if not keys:
                raise InitError(f"no objects under {uri} on {where}: check the bucket and prefix in storage_uri")
            base = prefix if (not prefix or prefix.endswith("/") or prefix not in keys) else prefix.rsplit("/", 1)[0]
            patterns = src.get("ignore_patterns") or []
            wanted: list[tuple[str, str]] = []
            for key in keys:
                if key.endswith("/"):
                    continue  # a "directory" placeholder object
                rel = key[len(base) :].lstrip("/") if base else key
                if any(fnmatch.fnmatch(rel, p) for p in patterns):
                    continue
                wanted.append((key, rel))
            self.progress.expect(len(wanted), sum(sizes[key] for key, _ in wanted))
            fetched = 0
            for key, rel in wanted:
                target = safe_join(dest, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                client.download_file(bucket, key, target, Callback=self.progress.add)
                self.progress.add(files=1)
                fetched += 1
            self.log(f"fetched {fetched} of {len(keys)} objects under {uri}")
        except NoCredentialsError as exc:
            raise InitError(f"no credentials for {where}: pass access_key_id and secret_access_key") from exc
        except (EndpointConnectionError, ConnectTimeoutError) as exc:  # refused, or no answer: unreachable
            raise InitError(f"cannot reach {where}: check endpoint and the network ({first_line(exc)})") from exc
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "InvalidToken"):
                raise InitError(
                    f"{where} rejected the credentials for {uri} ({code}): check access_key_id / "
                    f"secret_access_key (and role_arn)"
                ) from exc
            if code in ("NoSuchBucket", "404"):
                raise InitError(f"bucket {bucket!r} does not exist on {where}: check storage_uri") from exc
            raise InitError(f"{where} refused {uri}: {code}: {err.get('Message') or exc}") from exc
        except BotoCoreError as exc:
            raise InitError(f"cannot download {uri} from {where}: {exc}") from exc

    # Plain URLs and paths -----------------------------------------------------------------------------
    def fetch_url(self, dest: str) -> None:
        url = self.source["url"]
        name = os.path.basename(urllib.parse.urlparse(url).path) or "download"
        target = os.path.join(dest, name)
        digest = hashlib.sha256()
        request = urllib.request.Request(url, headers={"User-Agent": "kubeflow-trainer-initializer"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response, open(target, "wb") as fh:
                length = response.headers.get("Content-Length")
                self.progress.expect(1, int(length) if length and length.isdigit() else None)
                while True:
                    chunk = response.read1(1 << 20)  # what has arrived (read() waits for 1 MiB: no progress when slow)
                    if not chunk:
                        break
                    digest.update(chunk)
                    fh.write(chunk)
                    self.progress.add(len(chunk))
                self.progress.add(files=1)
        except urllib.error.HTTPError as exc:
            raise InitError(f"{url} answered HTTP {exc.code} {exc.reason}: check storage_uri") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InitError(f"cannot reach {url}: {reason}; check the address and the network") from exc
        self.check_digest(digest.hexdigest(), url)
        if self.source.get("unpack"):
            self.unpack(target, dest)

    def fetch_path(self, dest: str) -> None:
        path = self.source["path"]
        if os.path.isdir(path):
            self.copy_with_progress(path, dest)
            return
        if not os.path.isfile(path):
            raise InitError(f"{path} does not exist or is not a file or directory: check storage_uri")
        target = os.path.join(dest, os.path.basename(path))
        self.progress.expect(1, os.path.getsize(path))
        shutil.copyfile(path, target)
        self.progress.add(os.path.getsize(path), files=1)
        if self.source.get("sha256"):
            self.check_digest(file_sha256(target), path)
        if self.source.get("unpack"):
            self.unpack(target, dest)

    def copy_with_progress(self, src: str, dest: str) -> None:
        """A tree copied (symlinks kept) with a progress line per second: files and bytes copied of the tree's."""
        self.progress.expect(*tree_size(src))

        def copy(source: str, target: str) -> Any:
            copied = shutil.copy2(source, target)
            self.progress.add(os.lstat(source).st_size, files=1)
            return copied

        shutil.copytree(src, dest, dirs_exist_ok=True, symlinks=True, copy_function=copy)

    def check_digest(self, actual: str, what: str) -> None:
        expected = self.source.get("sha256")
        if expected and actual != expected:
            raise InitError(f"{what} has sha256 {actual}, expected {expected}: the file changed or is corrupt")

    def unpack(self, archive: str, dest: str) -> None:
        try:
            shutil.unpack_archive(archive, dest, filter="data")
        except TypeError:  # Python < 3.12 has no filter argument
            shutil.unpack_archive(archive, dest)
        except (shutil.ReadError, ValueError) as exc:
            raise InitError(f"cannot unpack {os.path.basename(archive)}: {exc}; use .tar, .tar.gz or .zip") from exc
        os.remove(archive)


def safe_join(root: str, rel: str) -> str:
    target = os.path.normpath(os.path.join(root, rel))
    if not target.startswith(os.path.normpath(root) + os.sep):
        raise InitError(f"refusing to write {rel!r} outside the target directory")
    return target


def tree_size(root: str) -> tuple[int, int]:
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def write_status(spec: dict[str, Any], ok: bool, summary: dict[str, Any]) -> None:
    status_dir = spec.get("status_dir")
    if not status_dir:
        return
    os.makedirs(status_dir, exist_ok=True)
    step = spec["step"]
    with open(os.path.join(status_dir, f"{step}.json.tmp"), "w") as fh:
        json.dump(summary, fh)
    os.replace(os.path.join(status_dir, f"{step}.json.tmp"), os.path.join(status_dir, f"{step}.json"))
    with open(os.path.join(status_dir, f"{step}.{'ok' if ok else 'failed'}"), "w") as fh:
        fh.write(summary.get("message") or "ok")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: initializer.py <spec.json>", file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        spec = json.load(fh)
    step = Step(spec)
    timeout = spec.get("timeout")
    if timeout:

        def expired(_signum: int, _frame: Any) -> None:
            raise InitError(
                f"did not finish within {timeout:g}s (the backend's initializer_timeout); raise it, or use a "
                "cache so that later jobs skip the download"
            )

        signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, float(timeout))
    try:
        summary = step.run()
    except InitError as exc:
        step.log(f"error: {exc}")
        write_status(spec, False, {"status": "Failed", "message": str(exc)})
        return 1
    except BaseException as exc:  # a bug or an unexpected library error: show it all, still fail cleanly
        traceback.print_exc()
        message = f"unexpected {type(exc).__name__}: {first_line(exc)}"
        step.log(f"error: {message}")
        write_status(spec, False, {"status": "Failed", "message": message})
        return 1
    write_status(spec, True, {"status": "Complete", **summary})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
