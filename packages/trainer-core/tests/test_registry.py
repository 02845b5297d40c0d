"""Discovery rules, exercised on real distribution metadata (dist-info folders on a sys.path entry)."""

from __future__ import annotations

import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from kubeflow_trainer import (
    BackendConflictError,
    BackendLoadError,
    BackendNotFoundError,
    TrainerClient,
)
from kubeflow_trainer.backend import ENTRY_POINT_GROUP
from kubeflow_trainer.registry import BackendRegistry

PLUGIN = """
from kubeflow_trainer import Backend, BackendConfig, BackendSpec, Capability, hookimpl

class {cls}Config(BackendConfig):
    pass

class {cls}Backend(Backend):
    name = "{name}"
    def render(self, plan): return {{"plan": plan.name}}
    def submit(self, plan): pass
    def list_jobs(self, runtime=None): return []
    def get_job(self, name): raise LookupError(name)
    def get_job_logs(self, name, step="node-0", follow=False): return iter(())
    def get_job_events(self, name): return []
    def delete_job(self, name): pass

@hookimpl
def trainer_register_backends(register):
    register(BackendSpec(name="{name}", config_class={cls}Config, factory={cls}Backend,
                         capabilities=frozenset({{Capability.EVENTS}})))
"""


def make_dist(root: Path, dist: str, module: str, ep_name: str, body: str) -> None:
    """A minimal installed distribution: its module and a dist-info with an entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{ep_name} = {module}\n")


def registry_for(root: Path, monkeypatch: pytest.MonkeyPatch) -> BackendRegistry:
    monkeypatch.syspath_prepend(str(root))
    eps = [
        ep for d in metadata.distributions(path=[str(root)]) for ep in d.entry_points if ep.group == ENTRY_POINT_GROUP
    ]
    return BackendRegistry(entry_points=eps)


@pytest.fixture(autouse=True)
def _forget_modules():
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("kft_test_"):
            del sys.modules[name]


def test_plugins_merge_and_are_selectable(tmp_path, monkeypatch):
    make_dist(tmp_path, "dist-alpha", "kft_test_alpha", "alpha", PLUGIN.format(cls="Alpha", name="alpha"))
    make_dist(tmp_path, "dist-beta", "kft_test_beta", "beta", PLUGIN.format(cls="Beta", name="beta"))
    reg = registry_for(tmp_path, monkeypatch)
    assert reg.names() == ["alpha", "beta"]
    assert reg.get("alpha").distribution == "dist-alpha"
    client = TrainerClient(backend="beta", registry=reg)
    assert client.backend_name == "beta"
    config = sys.modules["kft_test_alpha"].AlphaConfig()
    assert TrainerClient(backend_config=config, registry=reg).backend_name == "alpha"


def test_same_name_from_two_distributions_names_both(tmp_path, monkeypatch):
    make_dist(tmp_path, "dist-one", "kft_test_one", "dup", PLUGIN.format(cls="One", name="dup"))
    make_dist(tmp_path, "dist-two", "kft_test_two", "dup", PLUGIN.format(cls="Two", name="dup"))
    make_dist(tmp_path, "dist-ok", "kft_test_ok", "ok", PLUGIN.format(cls="Ok", name="ok"))
    reg = registry_for(tmp_path, monkeypatch)
    with pytest.raises(BackendConflictError) as info:
        reg.get("dup")
    assert "dist-one" in str(info.value) and "dist-two" in str(info.value)
    assert reg.names() == ["ok"]  # the others still work
    assert TrainerClient(backend="ok", registry=reg).backend_name == "ok"


def test_broken_plugin_reported_with_traceback_only_when_used(tmp_path, monkeypatch):
    make_dist(tmp_path, "dist-broken", "kft_test_broken", "broken", "raise RuntimeError('plugin import exploded')\n")
    make_dist(tmp_path, "dist-good", "kft_test_good", "good", PLUGIN.format(cls="Good", name="good"))
    reg = registry_for(tmp_path, monkeypatch)
    assert reg.names() == ["good"]
    assert TrainerClient(backend="good", registry=reg).backend_name == "good"
    with pytest.raises(BackendLoadError) as info:
        TrainerClient(backend="broken", registry=reg)
    message = str(info.value)
    assert "dist-broken" in message and "plugin import exploded" in message and "Traceback" in message


def test_plugin_with_bad_registration_is_recorded(tmp_path, monkeypatch):
    bad = (
        "from kubeflow_trainer import hookimpl\n@hookimpl\ndef trainer_register_backends(register):\n"
        "    register('not a spec')\n"
    )
    make_dist(tmp_path, "dist-bad", "kft_test_bad", "bad", bad)
    reg = registry_for(tmp_path, monkeypatch)
    with pytest.raises(BackendLoadError, match="BackendSpec"):
        reg.get("bad")


def test_unknown_hook_in_plugin_is_refused(tmp_path, monkeypatch):
    body = "from kubeflow_trainer import hookimpl\n@hookimpl\ndef trainer_no_such_hook():\n    pass\n"
    make_dist(tmp_path, "dist-typo", "kft_test_typo", "typo", body)
    reg = registry_for(tmp_path, monkeypatch)
    with pytest.raises(BackendLoadError, match="trainer_no_such_hook"):
        reg.get("typo")


def test_disable_switch_blocks_plugins(tmp_path, monkeypatch):
    make_dist(tmp_path, "dist-alpha", "kft_test_alpha", "alpha", PLUGIN.format(cls="Alpha", name="alpha"))
    make_dist(tmp_path, "dist-beta", "kft_test_beta", "beta", PLUGIN.format(cls="Beta", name="beta"))
    monkeypatch.setenv("KUBEFLOW_TRAINER_DISABLE_BACKENDS", "alpha")
    reg = registry_for(tmp_path, monkeypatch)
    assert reg.names() == ["beta"]
    assert "kft_test_alpha" not in sys.modules  # not even imported
    with pytest.raises(BackendNotFoundError, match="disabled by KUBEFLOW_TRAINER_DISABLE_BACKENDS"):
        reg.get("alpha")


def test_unknown_backend_lists_installed_and_says_how_to_install(tmp_path, monkeypatch):
    make_dist(tmp_path, "dist-alpha", "kft_test_alpha", "alpha", PLUGIN.format(cls="Alpha", name="alpha"))
    reg = registry_for(tmp_path, monkeypatch)
    with pytest.raises(BackendNotFoundError) as info:
        TrainerClient(backend="docker", registry=reg)
    assert "installed backends: alpha" in str(info.value)
    assert 'pip install "trainer-core[docker]"' in str(info.value)
    with pytest.raises(BackendNotFoundError, match="no backend named 'zzz'"):
        reg.get("zzz")


def test_selection_by_environment_variable_and_default(tmp_path, monkeypatch):
    make_dist(tmp_path, "dist-alpha", "kft_test_alpha", "alpha", PLUGIN.format(cls="Alpha", name="alpha"))
    reg = registry_for(tmp_path, monkeypatch)
    monkeypatch.setenv("KUBEFLOW_TRAINER_BACKEND", "alpha")
    assert TrainerClient(registry=reg).backend_name == "alpha"
    monkeypatch.delenv("KUBEFLOW_TRAINER_BACKEND")
    with pytest.raises(BackendNotFoundError, match="'kubernetes'"):
        TrainerClient(registry=reg)  # the default, as upstream


def test_plugins_load_lazily(tmp_path, monkeypatch):
    make_dist(tmp_path, "dist-alpha", "kft_test_alpha", "alpha", PLUGIN.format(cls="Alpha", name="alpha"))
    reg = registry_for(tmp_path, monkeypatch)
    assert "kft_test_alpha" not in sys.modules
    reg.names()
    assert "kft_test_alpha" in sys.modules


def test_adjust_hook_edits_every_plan(tmp_path, monkeypatch):
    body = PLUGIN.format(cls="Alpha", name="alpha") + textwrap.dedent("""
        @hookimpl
        def trainer_adjust_job_plan(plan):
            plan.env["ADDED_BY_POLICY"] = plan.backend
    """)
    make_dist(tmp_path, "dist-alpha", "kft_test_alpha", "alpha", body)
    reg = registry_for(tmp_path, monkeypatch)
    from kubeflow_trainer import CustomTrainer

    def train():
        pass

    result = TrainerClient(backend="alpha", registry=reg).dry_run(trainer=CustomTrainer(func=train))
    assert result.plan.env["ADDED_BY_POLICY"] == "alpha"


def test_backend_names_itself_and_the_registry_checks_it(tmp_path, monkeypatch):
    """A backend's name is its own (a class attribute), not assigned after construction: a factory returning a
    backend named otherwise than its registration is refused; an unnamed (older) backend is named with a
    DeprecationWarning."""
    wrong = PLUGIN.format(cls="Gamma", name="gamma").replace('name = "gamma"', 'name = "not-gamma"')
    unnamed = PLUGIN.format(cls="Delta", name="delta").replace('    name = "delta"\n', "")
    make_dist(tmp_path, "dist-gamma", "kft_test_gamma", "gamma", wrong)
    make_dist(tmp_path, "dist-delta", "kft_test_delta", "delta", unnamed)
    reg = registry_for(tmp_path, monkeypatch)
    with pytest.raises(BackendLoadError, match=r"named 'not-gamma'.*set name = 'gamma'"):
        TrainerClient(backend="gamma", registry=reg)
    with pytest.warns(DeprecationWarning, match="set name = 'delta'"):
        client = TrainerClient(backend="delta", registry=reg)
    assert client.backend.name == "delta"


def test_capabilities_are_an_open_set():
    """Built-in capabilities are looked up by name like an Enum; an option's module defines a new one once."""
    from kubeflow_trainer import Capability

    assert Capability("gpu") is Capability.GPU and Capability.GPU == "gpu" and Capability.GPU.name == "GPU"
    with pytest.raises(ValueError, match="not a defined capability"):
        Capability("kft-test-undefined")
    made = Capability("kft-test-extra", "A capability defined by a test.")
    assert Capability("kft-test-extra") is made and made in Capability.defined()
    assert Capability("kft-test-extra", "A capability defined by a test.") is made
    with pytest.raises(ValueError, match="already defined"):
        Capability("kft-test-extra", "Another text.")
    with pytest.raises(ValueError, match="lower-case"):
        Capability("Bad_Name", "doc")


OPTION_MODULE = """
from typing import ClassVar
from kubeflow_trainer import Capability
from kubeflow_trainer.options import JobOption

RETRIES = Capability("kft-test-retries", "The Retries option (a test's own).")

class Retries(JobOption):
    count: int
    requires: ClassVar[frozenset[Capability]] = frozenset({RETRIES})

    def apply(self, plan):
        plan.env["RETRIES"] = str(self.count)

    @classmethod
    def example(cls):
        return cls(count=2)
"""


def test_a_new_option_touches_three_files(tmp_path, monkeypatch):
    """An option that needs a new capability is written in one module (the option and its capability); a
    backend honours it by declaring the capability (and rendering it); every other backend refuses it before
    anything starts, and the kit's capability table picks it up with no change to the kit."""
    (tmp_path / "kft_test_retries.py").write_text(textwrap.dedent(OPTION_MODULE))
    honours = PLUGIN.format(cls="Eps", name="eps").replace(
        "capabilities=frozenset({Capability.EVENTS})", "capabilities=frozenset({Capability.EVENTS, RETRIES})"
    )
    honours = "from kft_test_retries import RETRIES\n" + honours
    make_dist(tmp_path, "dist-eps", "kft_test_eps", "eps", honours)
    make_dist(tmp_path, "dist-zeta", "kft_test_zeta", "zeta", PLUGIN.format(cls="Zeta", name="zeta"))
    reg = registry_for(tmp_path, monkeypatch)
    from kft_test_retries import Retries  # type: ignore[import-not-found]

    from kubeflow_trainer import Capability, CustomTrainer, UnsupportedFeatureError
    from kubeflow_trainer.runtimes import builtin_runtimes
    from kubeflow_trainer.testing import jobs
    from kubeflow_trainer.testing.contract import BackendContract

    trainer = CustomTrainer(func=jobs.echo_job, func_args={"message": "x"})
    runtime = next(r for r in builtin_runtimes() if r.name == "torch-distributed")
    plan = TrainerClient(backend="eps", registry=reg).dry_run(runtime=runtime, trainer=trainer, options=[Retries(3)])
    assert plan.plan.env["RETRIES"] == "3"
    with pytest.raises(UnsupportedFeatureError, match="kft-test-retries"):
        TrainerClient(backend="zeta", registry=reg).dry_run(runtime=runtime, trainer=trainer, options=[Retries(3)])
    assert BackendContract().capability_requests()["option Retries"][0] == {Capability("kft-test-retries")}
