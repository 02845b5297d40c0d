"""A client in its own process, for the faults that need one: ``python clientproc.py <mode> <config.json> <job>``.

Modes:
- ``train-then-hang``: submit, but stop for good at a chosen point in the middle of ``train()`` (after some of
  the job's resources exist): local before its supervisor starts, containers after the first container is
  created. Prints ``POINT`` there, so the test SIGKILLs the process at exactly that point.
- ``race <start-at>``: sleep until the wall-clock time ``start-at``, submit, print ``OK`` or the error's type.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import faultjobs

from kubeflow_trainer import CustomTrainer, Name, TrainerClient, TrainerError


def hang(label: str) -> None:
    print("POINT", label, flush=True)
    time.sleep(3600)


def load_config(path: str) -> Any:
    with open(path) as fh:
        spec = json.load(fh)
    module, _, cls = spec["class"].rpartition(".")
    return getattr(importlib.import_module(module), cls).model_validate(spec["config"])


def main(mode: str, config_file: str, name: str, *rest: str) -> int:
    client = TrainerClient(load_config(config_file))
    if mode == "train-then-hang":
        if client.backend_name == "local":
            # The supervisor is forked from the SDK's zygote (hot starts, when one runs) or started as a
            # process; both paths go through _fork_supervisor first, so the point is the same for both.
            def fork_supervisor(*args: Any, **kwargs: Any) -> Any:
                hang("job record written, supervisor not started")

            client.backend._fork_supervisor = fork_supervisor  # type: ignore[attr-defined]
        else:
            engine = client.backend.engine
            real_create = engine.create_container
            made: list[str] = []

            def create(spec: Any) -> str:
                made.append(real_create(spec))
                if len(made) == 1:
                    hang("volume, network and the first container created, not started")
                return made[-1]

            engine.create_container = create
        client.train(
            trainer=CustomTrainer(func=faultjobs.sleeper, func_args={"seconds": 60}, num_nodes=2),
            options=[Name(name)],
        )
        print("SUBMITTED (the kill point was not reached)", flush=True)
        return 1
    if mode == "race":
        time.sleep(max(0.0, float(rest[0]) - time.time()))
        try:
            client.train(
                trainer=CustomTrainer(func=faultjobs.quick, func_args={"tag": str(os.getpid())}),
                options=[Name(name)],
            )
        except TrainerError as exc:
            print(type(exc).__name__, str(exc).replace("\n", " "), flush=True)
            return 0
        print("OK", os.getpid(), flush=True)
        return 0
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
