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


def rank0_ends_last() -> None:
    import os
    import time

    if os.environ.get("RANK") == "0":
        time.sleep(1.0)  # node 1 reaches the exit barrier first; node 0, which hosts the store, arrives last
    print(f"ended {os.environ.get('RANK')}", flush=True)


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


def report_env(out_dir: str) -> None:
    """Write what this worker sees (environment, cwd, argv, sys.path[0], affinity) to ``<out_dir>/<RANK>.json``."""
    import json
    import os
    import sys

    seen = {
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "argv": sys.argv,
        "path0": sys.path[0],
        "name": __name__,
        "cpus": sorted(os.sched_getaffinity(0)),
    }
    with open(os.path.join(out_dir, f"{os.environ['RANK']}.json"), "w") as fh:
        json.dump(seen, fh)


LEAK_GLOBAL = "pristine"


def mutate_and_report(tag: str) -> None:
    """Report the state this job starts with, then change every kind of process state it can: a module-level
    global of its own module, attributes of imported modules, the environment, the working directory, the
    numpy RNG. The next job must see none of it."""
    import json
    import os
    import sys

    import numpy
    import torch

    main = sys.modules["__main__"]
    seen = {
        "tag": tag,
        "env_tag": os.environ.get("KFT_JOB_TAG"),
        "leaked_env": os.environ.get("KFT_LEAK"),
        "global": getattr(main, "LEAK_GLOBAL", None),
        "torch_attr": getattr(torch, "_kft_leak", None),
        "json_attr": getattr(json, "_kft_leak", None),
        "cwd": os.getcwd(),
        "numpy_draw": float(numpy.random.rand()),
        "threads": torch.get_num_threads(),
    }
    print("SEEN " + json.dumps(seen, sort_keys=True), flush=True)
    main.LEAK_GLOBAL = f"mutated by {tag}"
    torch._kft_leak = tag
    json._kft_leak = tag
    os.environ["KFT_LEAK"] = tag
    torch.set_num_threads(1)
    os.chdir("/")


def raise_error() -> None:
    print("ABOUT TO FAIL", flush=True)
    raise ValueError("boom from the job")


def ranks_fail_in_turn() -> None:
    """Two processes per node, two nodes: global rank 3 raises first, rank 0 a second later; the others wait."""
    import os
    import time

    rank = int(os.environ["RANK"])
    if rank == 3:
        time.sleep(1)
        raise KeyError("rank three's key")
    if rank == 0:
        time.sleep(2)
        raise ValueError("rank zero, later")
    time.sleep(60)
