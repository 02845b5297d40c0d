"""Training functions used by the LocalProcess backend tests (shipped by source like user functions)."""


def allreduce() -> None:
    import os
    import sys

    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    value = torch.tensor([float(dist.get_rank() + 1)])
    dist.all_reduce(value)
    # one write per line: the processes of a node share its log
    sys.stdout.write(
        f"RESULT rank={dist.get_rank()} world={dist.get_world_size()} sum={value.item()} "
        f"node_rank={os.environ['PET_NODE_RANK']}\n"
    )
    sys.stdout.flush()
    dist.destroy_process_group()


def show_env() -> None:
    import os

    print(
        f"CALLER={os.environ.get('KFT_FROM_CALLER')} JOB={os.environ.get('KFT_FROM_JOB')} "
        f"HOME-SET={bool(os.environ.get('HOME'))}",
        flush=True,
    )
    print(f"CWD {os.getcwd()}", flush=True)


def rank1_fails() -> None:
    import os
    import time

    if os.environ.get("PET_NODE_RANK") == "1":
        time.sleep(3)
        print(f"FAILING-AT {time.time()}", flush=True)
        raise SystemExit(3)
    time.sleep(300)


def sleep_forever() -> None:
    import time

    print("SLEEPING", flush=True)
    time.sleep(3600)


def sleep_then_print(seconds: float) -> None:
    import time

    time.sleep(seconds)
    print(f"DONE after {seconds:g}", flush=True)


def import_six() -> None:
    import six

    print(f"SIX {six.__version__}", flush=True)


def echo_arg(text: str) -> None:
    print(f"ARG {text}", flush=True)


def bytecode_report() -> None:
    """Whether torch's files were compiled when the environment was built: the probe is a module that no job
    imports (so no job could have written its .pyc at import time), looked up without importing torch."""
    import importlib.util
    import os
    import pathlib

    spec = importlib.util.find_spec("torch")
    assert spec is not None and spec.origin is not None
    probe = pathlib.Path(spec.origin).parent / "utils" / "bundled_inputs.py"
    compiled = pathlib.Path(importlib.util.cache_from_source(str(probe))).exists()
    print(
        f"BYTECODE probe={probe.exists()} compiled={compiled} dont_write={os.environ.get('PYTHONDONTWRITEBYTECODE')}",
        flush=True,
    )
