"""Backend discovery through the ``kubeflow_trainer.backends`` entry-point group.

Rules:

- Lazy: nothing is loaded at ``import kubeflow_trainer``; the first call that needs backends loads every
  plugin module of the group once (plugin modules are small; heavy SDKs load in the factories).
- Built-in and third-party backends merge; none replaces another. Two distributions registering the same
  name make that name an error that names both (:class:`~kubeflow_trainer.errors.BackendConflictError`).
- A plugin that fails to import, or registers wrongly, is recorded with its traceback; it never breaks the
  other backends, and asking for its backend raises :class:`~kubeflow_trainer.errors.BackendLoadError`
  carrying that traceback.
- ``KUBEFLOW_TRAINER_DISABLE_BACKENDS=a,b`` blocks plugins by backend name.
- An unknown name raises :class:`~kubeflow_trainer.errors.BackendNotFoundError` listing the installed
  backends and the ``pip install`` that provides a known one.
"""

from __future__ import annotations

import os
import re
import threading
import traceback
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

import pluggy

from kubeflow_trainer.backend import (
    ENTRY_POINT_GROUP,
    PROJECT,
    Backend,
    BackendConfig,
    BackendHooks,
    BackendSpec,
)
from kubeflow_trainer.capabilities import Capability
from kubeflow_trainer.errors import (
    BackendConflictError,
    BackendLoadError,
    BackendNotFoundError,
    InvalidRequestError,
)

DISABLE_ENV = "KUBEFLOW_TRAINER_DISABLE_BACKENDS"
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")

KNOWN_EXTRAS = {"kubernetes": "k8s", "k8s": "k8s", "local": "local", "docker": "docker", "podman": "podman"}
"""Backend names provided by first-party distributions, and the ``trainer-core`` extra that installs each."""


@dataclass
class PluginFailure:
    """A plugin that could not be loaded or registered."""

    entry_point: str
    distribution: str
    error: str
    traceback: str


@dataclass
class _State:
    specs: dict[str, BackendSpec] = field(default_factory=dict)
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    disabled: set[str] = field(default_factory=set)


def _disabled_names() -> set[str]:
    return {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "<unknown distribution>"


class BackendRegistry:
    """The set of installed backends. Use :func:`default_registry` for the process-wide one."""

    def __init__(self, entry_points: Iterable[metadata.EntryPoint] | None = None) -> None:
        self._entry_points = entry_points
        self._lock = threading.Lock()
        self._state: _State | None = None
        self.plugin_manager = pluggy.PluginManager(PROJECT)
        self.plugin_manager.add_hookspecs(BackendHooks)

    # Loading ----------------------------------------------------------------------------------------
    def _load(self) -> _State:
        if self._state is not None:
            return self._state
        with self._lock:
            if self._state is None:
                self._state = self._discover()
        return self._state

    def reload(self) -> None:
        """Forget what was discovered; the next use discovers again (tests, after ``pip install``)."""
        with self._lock:
            for plugin in list(self.plugin_manager.get_plugins()):
                self.plugin_manager.unregister(plugin)
            self._state = None

    def _discover(self) -> _State:
        state = _State(disabled=_disabled_names())
        eps = (
            list(self._entry_points)
            if self._entry_points is not None
            else list(metadata.entry_points(group=ENTRY_POINT_GROUP))
        )
        registered_by: dict[str, str] = {}
        for ep in eps:
            if ep.name in state.disabled:
                continue
            dist = _dist_name(ep)
            try:
                plugin = ep.load()
                plugin_name = f"{dist}:{ep.name}"
                if self.plugin_manager.has_plugin(plugin_name):
                    continue
                self.plugin_manager.register(plugin, name=plugin_name)
                try:
                    self.plugin_manager.check_pending()
                except pluggy.PluginValidationError:
                    self.plugin_manager.unregister(name=plugin_name)
                    raise
            except Exception as exc:
                state.failures.append(
                    PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}", traceback.format_exc())
                )
                continue
            impls = [
                impl
                for impl in self.plugin_manager.hook.trainer_register_backends.get_hookimpls()
                if impl.plugin_name == plugin_name
            ]
            for impl in impls:
                collected: list[BackendSpec] = []
                try:
                    impl.function(register=collected.append)
                    for spec in collected:
                        self._validate_spec(spec)
                except Exception as exc:
                    state.failures.append(
                        PluginFailure(ep.name, dist, f"{type(exc).__name__}: {exc}", traceback.format_exc())
                    )
                    continue
                for spec in collected:
                    if spec.name in state.disabled:
                        continue
                    previous = registered_by.get(spec.name)
                    if previous is not None and previous != dist:
                        state.conflicts.setdefault(spec.name, [previous]).append(dist)
                        continue
                    registered_by[spec.name] = dist
                    state.specs[spec.name] = replace(spec, distribution=dist)
        for name in state.conflicts:
            state.specs.pop(name, None)
        return state

    @staticmethod
    def _validate_spec(spec: Any) -> None:
        if not isinstance(spec, BackendSpec):
            raise TypeError(f"register() takes a BackendSpec; got {type(spec).__name__}")
        if not isinstance(spec.name, str) or not _NAME.match(spec.name):
            raise ValueError(f"backend name {spec.name!r} must match {_NAME.pattern}")
        if not (isinstance(spec.config_class, type) and issubclass(spec.config_class, BackendConfig)):
            raise TypeError(f"backend {spec.name!r}: config_class must subclass kubeflow_trainer.BackendConfig")
        if not callable(spec.factory):
            raise TypeError(f"backend {spec.name!r}: factory must be callable")
        bad = [c for c in spec.capabilities if not isinstance(c, Capability)]
        if bad:
            raise TypeError(f"backend {spec.name!r}: capabilities must be Capability members; got {bad}")

    # Queries ----------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Names of the backends that can be used."""
        return sorted(self._load().specs)

    def specs(self) -> list[BackendSpec]:
        """Specs of the backends that can be used."""
        state = self._load()
        return [state.specs[n] for n in sorted(state.specs)]

    def failures(self) -> list[PluginFailure]:
        """Plugins that failed to load or register."""
        return list(self._load().failures)

    def conflicts(self) -> dict[str, list[str]]:
        """Backend names registered by more than one distribution, with those distributions."""
        return {k: list(v) for k, v in self._load().conflicts.items()}

    def get(self, name: str) -> BackendSpec:
        """The spec of backend ``name``, or the error that says why it cannot be used."""
        state = self._load()
        if name in state.specs:
            return state.specs[name]
        if name in state.conflicts:
            dists = state.conflicts[name]
            raise BackendConflictError(
                f"backend '{name}' is registered by more than one installed distribution: "
                f"{' and '.join(repr(d) for d in dists)}. Uninstall one of them (pip uninstall <name>), or block "
                f"one plugin with {DISABLE_ENV}."
            )
        broken = [f for f in state.failures if f.entry_point == name]
        if broken:
            failure = broken[0]
            raise BackendLoadError(
                f"backend '{name}' from distribution {failure.distribution!r} failed to load: {failure.error}. "
                f"Reinstall or fix that distribution; its traceback:\n{failure.traceback}"
            )
        raise BackendNotFoundError(self._unknown_message(name, state))

    def _unknown_message(self, name: str, state: _State) -> str:
        installed = ", ".join(sorted(state.specs)) or "none"
        msg = f"no backend named '{name}' is installed (installed backends: {installed})."
        if name in state.disabled:
            msg += f" It is disabled by {DISABLE_ENV}={os.environ.get(DISABLE_ENV, '')}."
        elif name in KNOWN_EXTRAS:
            msg += f' Install it with: pip install "trainer-core[{KNOWN_EXTRAS[name]}]".'
        else:
            msg += (
                " Install the distribution that provides it, or pick an installed one with "
                "TrainerClient(backend=...) or KUBEFLOW_TRAINER_BACKEND."
            )
        if state.failures:
            msg += (
                " Plugins that failed to load: "
                + ", ".join(f"{f.entry_point} ({f.distribution})" for f in state.failures)
                + "."
            )
        return msg

    def for_config(self, config: BackendConfig) -> BackendSpec:
        """The backend whose ``config_class`` ``config`` is an instance of (most specific class wins)."""
        if not isinstance(config, BackendConfig):
            raise InvalidRequestError(
                f"backend_config must be a backend configuration object such as LocalProcessBackendConfig(); "
                f"got {type(config).__name__}"
            )
        matches = [s for s in self.specs() if isinstance(config, s.config_class)]
        if not matches:
            raise BackendNotFoundError(
                f"no installed backend accepts {type(config).__name__} (installed backends: "
                f"{', '.join(self.names()) or 'none'}). Install the distribution that defines it."
            )
        matches.sort(key=lambda s: len(s.config_class.__mro__), reverse=True)
        return matches[0]

    def create(self, spec: BackendSpec, config: BackendConfig) -> Backend[Any]:
        """Build the backend instance for ``spec`` with ``config``."""
        backend = spec.factory(config)
        if not isinstance(backend, Backend):
            raise BackendLoadError(
                f"backend '{spec.name}' from {spec.distribution!r}: its factory returned "
                f"{type(backend).__name__}, not a kubeflow_trainer.Backend"
            )
        if not backend.name:
            warnings.warn(
                f"backend '{spec.name}' ({type(backend).__name__} from {spec.distribution!r}) does not name itself: "
                f"set name = {spec.name!r} on the class; the registry no longer names backends from 0.7",
                DeprecationWarning,
                stacklevel=2,
            )
            backend.name = spec.name
        elif backend.name != spec.name:
            raise BackendLoadError(
                f"backend '{spec.name}' from {spec.distribution!r}: its factory returned a "
                f"{type(backend).__name__} named {backend.name!r}; a backend's name must be the one its plugin "
                f"registers (set name = {spec.name!r} on the class)"
            )
        return backend


_DEFAULT: BackendRegistry | None = None


def default_registry() -> BackendRegistry:
    """The process-wide registry over installed distributions."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = BackendRegistry()
    return _DEFAULT


def available_backends() -> list[str]:
    """Names of the installed, loadable backends (a list that Jupyter shows as a table of every installed
    backend: distribution, version, capabilities, and why a broken one cannot be used)."""
    from kubeflow_trainer.display import BackendList

    registry = default_registry()
    return BackendList(registry.names(), registry)
