"""``doctor``: is the selected backend ready to run jobs, and if not, what to do about it.

Each backend plugin contributes the checks of what it needs through the ``trainer_doctor_checks`` hook
(:class:`~kubeflow_trainer.backend.BackendHooks`): engine reachable and its version, the image present, kube
context, CRDs, uv and Python... Third-party backends implement the same hook. Core adds the checks every
backend shares: the backend is installed and loads, the configuration is valid, and the backend answers
(``list_runtimes``). Every failing check carries the fix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

from kubeflow_trainer.backend import BackendConfig

CheckStatus = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One finding: what was checked, the outcome, what was seen, and how to fix a failure.

    Args:
        name: What was checked, e.g. ``"docker engine reachable"``.
        status: ``"ok"``, ``"warn"`` (works, but worth knowing) or ``"fail"`` (jobs will not run).
        detail: What was found (a version, a path, the error).
        fix: For ``warn``/``fail``: the command or setting that fixes it.
    """

    name: str
    status: CheckStatus
    detail: str = ""
    fix: str = ""

    @property
    def ok(self) -> bool:
        """True unless the check failed."""
        return self.status != "fail"

    def to_dict(self) -> dict[str, str]:
        """The check as plain data (``-o json``)."""
        return asdict(self)


def ok(name: str, detail: str = "") -> Check:
    """A passing check."""
    return Check(name, "ok", detail)


def fail(name: str, detail: str, fix: str) -> Check:
    """A failing check with its fix."""
    return Check(name, "fail", detail, fix)


def warn(name: str, detail: str, fix: str = "") -> Check:
    """A check that passed with a caveat."""
    return Check(name, "warn", detail, fix)


def run_checks(backend: str, config: BackendConfig | None = None, registry: Any = None) -> list[Check]:
    """Every check for ``backend`` (with ``config``, else the backend's defaults), in order. Never raises for a
    problem of the backend: each problem is a failing check with its fix."""
    from kubeflow_trainer.errors import TrainerError
    from kubeflow_trainer.registry import default_registry

    reg = registry or default_registry()
    checks: list[Check] = []
    try:
        spec = reg.get(backend)
    except TrainerError as exc:
        return [fail(f"backend '{backend}' installed", str(exc).split("\n")[0], _install_fix(backend))]
    checks.append(ok(f"backend '{backend}' installed", f"{spec.distribution}"))
    if config is None:
        try:
            config = spec.config_class()
        except Exception as exc:  # a default config reads the environment (kubeconfig, DOCKER_HOST ...)
            checks.append(
                fail("configuration", f"{type(exc).__name__}: {exc}", "set the backend's settings with --config")
            )
            return checks
    for impl in reg.plugin_manager.hook.trainer_doctor_checks.get_hookimpls():
        try:  # one plugin's bug must not hide the other checks
            found = cast("list[Check] | None", impl.function(backend=backend, config=config))
        except Exception as exc:
            found = [fail(f"checks of plugin {impl.plugin_name}", f"{type(exc).__name__}: {exc}", "report the bug")]
        checks.extend(found or [])
    if all(c.ok for c in checks):  # else the failures above say it all
        checks.append(_answers(reg, spec, config))
    return checks


def _install_fix(backend: str) -> str:
    from kubeflow_trainer.registry import KNOWN_EXTRAS

    if backend in KNOWN_EXTRAS:
        return f'pip install "trainer-core[{KNOWN_EXTRAS[backend]}]"'
    return "install the distribution that provides this backend, or pick another with --backend"


def _answers(reg: Any, spec: Any, config: BackendConfig) -> Check:
    name = "backend answers (list runtimes)"
    try:
        backend = reg.create(spec, config)
        try:
            runtimes = backend.list_runtimes()
        finally:
            backend.close()
    except Exception as exc:
        return fail(
            name, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", "fix the checks above"
        )
    if not runtimes:
        return fail(name, "no runtimes", "install the training runtimes this backend reads (see its README)")
    return ok(name, f"{len(runtimes)} runtime(s): {', '.join(sorted(r.name for r in runtimes))}")
