"""Cached job environments: one virtualenv per (interpreter, requirements, package sources).

An environment is built once, under a file lock, and reused by every later job with the same key, so a warm
job starts as fast as ``torchrun`` itself. Two jobs preparing the same environment at once do not corrupt
it: the second waits on the lock and then finds it ready. A build that fails or is interrupted leaves no
``.ready`` marker and is rebuilt from scratch next time.

Installer: ``uv`` (the binary ships with the ``uv`` Python package) with the user's pip configuration
translated into flags; fallback: ``python -m venv`` and pip, which reads its configuration itself.

Command line: ``python -m kubeflow_trainer_local.envcache list|prune [--older-than-days N]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from kubeflow_trainer_local.pipconfig import PipSettings

READY = ".ready"
META = "meta.json"
VENV = "venv"
BYTECODE_LAYOUT = "compiled-at-install"
"""Part of every environment key: packages are compiled to bytecode when installed, so a job's imports read
``.pyc`` files even where ``PYTHONDONTWRITEBYTECODE`` is set."""


class EnvironmentError_(RuntimeError):
    """Building an environment failed; the message carries the installer's output tail."""


def merge_requirements(runtime: Iterable[str], user: Iterable[str]) -> list[str]:
    """Runtime requirements overridden by same-named user requirements (PEP 503 names), sorted by name.

    Raises ValueError for an invalid requirement or a package named twice by the user.
    """
    merged: dict[str, str] = {}
    for req_text in runtime:
        req = Requirement(req_text)
        merged[canonicalize_name(req.name)] = str(req)
    seen: set[str] = set()
    for req_text in user:
        try:
            req = Requirement(req_text)
        except InvalidRequirement as exc:
            raise ValueError(f"packages_to_install: {req_text!r} is not a valid requirement ({exc})") from exc
        name = canonicalize_name(req.name)
        if name in seen:
            raise ValueError(f"packages_to_install names {req.name!r} more than once")
        seen.add(name)
        merged[name] = str(req)
    return [merged[n] for n in sorted(merged)]


def interpreter_identity(python: str) -> tuple[str, str]:
    """(real path, version string) of an interpreter."""
    real = os.path.realpath(python)
    if real == os.path.realpath(sys.executable):
        return real, sys.version.split()[0]
    out = subprocess.run(
        [real, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True, check=True
    )
    return real, out.stdout.strip()


def satisfied_by_base(requirements: list[str]) -> list[str]:
    """Requirements the current interpreter already satisfies (for ``system_site_packages``)."""
    from importlib import metadata

    done = []
    for text in requirements:
        req = Requirement(text)
        if req.url or req.extras:
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            continue
        if req.specifier.contains(version, prereleases=True):
            done.append(text)
    return done


@dataclass(frozen=True)
class EnvSpec:
    """Everything that decides an environment's content."""

    python: str
    python_version: str
    requirements: tuple[str, ...]
    pip: PipSettings
    system_site_packages: bool
    installer: str

    def key(self) -> str:
        """Content key of the environment (hex)."""
        blob = json.dumps(
            {
                "python": self.python,
                "version": self.python_version,
                "requirements": list(self.requirements),
                "pip": self.pip.fingerprint(),
                "system_site_packages": self.system_site_packages,
                "installer": self.installer,
                # Environments built before packages were compiled at install time must not be reused.
                "bytecode": BYTECODE_LAYOUT,
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:20]


def uv_binary() -> str | None:
    """Path of the uv binary shipped with the ``uv`` package, if installed."""
    try:
        from uv import find_uv_bin
    except ImportError:
        return None
    try:
        return find_uv_bin()
    except FileNotFoundError:
        return None


def resolve_installer(choice: str) -> str:
    """``uv`` or ``pip`` for a config choice of ``auto``/``uv``/``pip``."""
    if choice == "pip":
        return "pip"
    if uv_binary():
        return "uv"
    if choice == "uv":
        raise EnvironmentError_("installer='uv' was requested but the uv package is not installed: pip install uv")
    return "pip"


@dataclass
class CachedEnvironment:
    """One entry of the cache."""

    key: str
    path: str
    ready: bool
    requirements: list[str]
    created: float | None
    last_used: float | None
    size_bytes: int


class EnvironmentCache:
    """The directory of cached environments."""

    def __init__(self, root: str) -> None:
        self.root = root

    def path(self, key: str) -> str:
        """Directory of the environment ``key``."""
        return os.path.join(self.root, key)

    def python(self, key: str) -> str:
        """Interpreter inside the environment ``key``."""
        return os.path.join(self.path(key), VENV, "bin", "python")

    def _lock(self, key: str, timeout: float = -1) -> Any:
        from filelock import FileLock

        os.makedirs(self.root, exist_ok=True)
        return FileLock(os.path.join(self.root, f"{key}.lock"), timeout=timeout)

    def is_ready(self, key: str) -> bool:
        """True when the environment is complete."""
        return os.path.exists(os.path.join(self.path(key), READY))

    def ensure(self, spec: EnvSpec, log: Any, key: str | None = None) -> tuple[str, bool, float]:
        """Build the environment for ``spec`` unless it is ready. Returns (venv dir, reused, seconds).

        ``key`` is the entry to use (default ``spec.key()``; a job's request names the key it was rendered
        with, so its processes run in exactly that venv). ``log`` is a binary file the installer output goes
        to. Raises EnvironmentError_ on failure.
        """
        key = key or spec.key()
        started = time.monotonic()
        with self._lock(key):
            env_dir = self.path(key)
            if self.is_ready(key):
                os.utime(os.path.join(env_dir, READY))
                return os.path.join(env_dir, VENV), True, time.monotonic() - started
            shutil.rmtree(env_dir, ignore_errors=True)
            os.makedirs(env_dir)
            try:
                self._build(spec, env_dir, log)
            except BaseException:
                shutil.rmtree(env_dir, ignore_errors=True)
                raise
            meta = {
                "key": key,
                "python": spec.python,
                "python_version": spec.python_version,
                "requirements": list(spec.requirements),
                "pip": spec.pip.fingerprint(),
                "system_site_packages": spec.system_site_packages,
                "installer": spec.installer,
                "created": time.time(),
                "resolved": self._freeze(spec, env_dir),
            }
            with open(os.path.join(env_dir, META), "w", encoding="utf-8") as fh:
                json.dump(meta, fh, indent=2)
            with open(os.path.join(env_dir, READY), "w", encoding="utf-8") as fh:
                fh.write(key)
        return os.path.join(env_dir, VENV), False, time.monotonic() - started

    def _run(self, argv: list[str], log: Any, env: dict[str, str]) -> None:
        log.write(("$ " + " ".join(argv) + "\n").encode())
        log.flush()
        proc = subprocess.run(argv, stdout=log, stderr=log, env=env, stdin=subprocess.DEVNULL, check=False)
        if proc.returncode != 0:
            raise EnvironmentError_(f"{os.path.basename(argv[0])} exited with code {proc.returncode}")

    def _build(self, spec: EnvSpec, env_dir: str, log: Any) -> None:
        venv = os.path.join(env_dir, VENV)
        env = dict(os.environ)
        env.pop("VIRTUAL_ENV", None)
        env.pop("PYTHONHOME", None)
        if spec.pip.cert and not env.get("SSL_CERT_FILE"):
            env["SSL_CERT_FILE"] = spec.pip.cert
        site = ["--system-site-packages"] if spec.system_site_packages else []
        requirements = list(spec.requirements)
        if spec.installer == "uv":
            uv = uv_binary()
            assert uv is not None
            # --color never: the log is parsed for progress, and a notebook kernel or CI may force colours
            self._run(
                [uv, "venv", "--quiet", "--color", "never", "--seed", "--python", spec.python, *site, venv], log, env
            )
            if requirements:
                self._run(
                    [
                        uv,
                        "pip",
                        "install",
                        "--color",
                        "never",
                        "--python",
                        os.path.join(venv, "bin", "python"),
                        # uv leaves .py files uncompiled by default; with PYTHONDONTWRITEBYTECODE=1 (common in
                        # containers and CI) every job would then compile torch's modules again on import.
                        "--compile-bytecode",
                        *spec.pip.installer_args(),
                        *requirements,
                    ],
                    log,
                    env,
                )
        else:
            self._run([spec.python, "-m", "venv", *site, venv], log, env)
            if requirements:
                index_args = spec.pip.installer_args() if "job pip_index_urls" in spec.pip.sources else []
                self._run(
                    [
                        os.path.join(venv, "bin", "python"),
                        "-m",
                        "pip",
                        "install",
                        "--disable-pip-version-check",
                        "--no-color",
                        "--compile",  # pip's default, stated: bytecode written at install, not at import
                        *index_args,
                        *requirements,
                    ],
                    log,
                    env,
                )

    def _freeze(self, spec: EnvSpec, env_dir: str) -> list[str]:
        python = os.path.join(env_dir, VENV, "bin", "python")
        uv = uv_binary() if spec.installer == "uv" else None
        argv = [uv, "pip", "freeze", "--python", python] if uv else [python, "-m", "pip", "freeze"]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        return proc.stdout.split() if proc.returncode == 0 else []

    # Listing and pruning -------------------------------------------------------------------------------
    def entries(self) -> list[CachedEnvironment]:
        """Every environment in the cache (ready or not), oldest first."""
        if not os.path.isdir(self.root):
            return []
        out = []
        for key in sorted(os.listdir(self.root)):
            path = self.path(key)
            if not os.path.isdir(path):
                continue
            meta: dict[str, Any] = {}
            try:
                with open(os.path.join(path, META), encoding="utf-8") as fh:
                    meta = json.load(fh)
            except (OSError, ValueError):
                pass
            ready_file = os.path.join(path, READY)
            out.append(
                CachedEnvironment(
                    key=key,
                    path=path,
                    ready=os.path.exists(ready_file),
                    requirements=list(meta.get("requirements", [])),
                    created=meta.get("created"),
                    last_used=os.path.getmtime(ready_file) if os.path.exists(ready_file) else None,
                    size_bytes=_tree_size(path),
                )
            )
        return sorted(out, key=lambda e: e.created or 0)

    def prune(self, older_than_seconds: float | None = None, keep: Iterable[str] = ()) -> list[str]:
        """Remove environments not used for ``older_than_seconds`` (all when None), except ``keep`` and
        environments being built or used right now (their lock is held). Returns the removed keys."""
        from filelock import Timeout

        keep = set(keep)
        now = time.time()
        removed = []
        for entry in self.entries():
            if entry.key in keep:
                continue
            if older_than_seconds is not None and entry.last_used and now - entry.last_used < older_than_seconds:
                continue
            try:
                with self._lock(entry.key, timeout=0):
                    shutil.rmtree(entry.path, ignore_errors=True)
            except Timeout:
                continue
            try:
                os.unlink(os.path.join(self.root, f"{entry.key}.lock"))
            except OSError:
                pass
            removed.append(entry.key)
        return removed


def _tree_size(path: str) -> int:
    total = 0
    seen: set[int] = set()
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if st.st_ino in seen:
                continue
            seen.add(st.st_ino)
            total += st.st_size
    return total


def main(argv: list[str] | None = None) -> int:
    """``list`` or ``prune`` the cache of the default (or ``--cache-dir``) location."""
    import argparse

    from kubeflow_trainer_local.config import default_cache_dir

    parser = argparse.ArgumentParser(prog="python -m kubeflow_trainer_local.envcache")
    parser.add_argument("command", choices=["list", "prune"])
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--older-than-days", type=float, default=None)
    args = parser.parse_args(argv)
    cache = EnvironmentCache(args.cache_dir or default_cache_dir())
    if args.command == "list":
        for env in cache.entries():
            state = "ready" if env.ready else "incomplete"
            print(f"{env.key}  {state:10s}  {env.size_bytes / 2**20:9.1f} MiB  {' '.join(env.requirements)}")
        return 0
    older = args.older_than_days * 86400 if args.older_than_days is not None else None
    for key in cache.prune(older_than_seconds=older):
        print(f"removed {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
