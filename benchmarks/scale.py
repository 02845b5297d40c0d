"""Does the SDK's own work grow no faster than the work? Four sections, each selected by its flag (all when none):

``--list-jobs``: ``list_jobs`` with 1, 100 and 1,000 jobs (``--sizes``) on local, Docker and Podman: median
seconds per call, and per call the files opened (local) or the engine API calls (containers), with the engine's
full container read (what ``list_jobs`` did before it read the list once) beside it. The jobs are made at the
storage level from the backend's own rendered requests (``dry_run``), because submitting 1,000 real jobs takes
hours here: local, the job record as ``submit`` writes it (``request.json``, ``state.json``) with the state a
finished job's supervisor leaves; containers, each node container created (not started) from the rendered
container spec with the job's labels, on the engine's default network and without the job's volumes (an engine
holds a few dozen job networks at most). Each size checks that ``list_jobs`` returns exactly those jobs; all of
them are removed afterwards. The container jobs use their own label prefix, so other jobs on the engines are
not counted.

``--logs``: ``get_job_logs(follow=True)`` on a local job that prints ``--log-mib`` MiB (default 1024) of
100-byte lines, and on a Docker job printing ``--docker-log-mib``: the following client's (a fresh process's)
peak RSS growth and MB/s, once following the running job and once the finished one, next to ``cat`` of the log
file (local) or ``docker logs`` (Docker) to /dev/null in the same run.

``--nodes``: an 8-node job vs a 1-node job, local with hot starts on and off and Docker: seconds from
``train()`` to the last rank running (each rank prints its wall-clock time when its function starts) and to
Complete.

``--in-flight``: ``--jobs`` (50) one-node local jobs submitted at once with ``max_running_jobs=--limit``: the
client process's user+sys CPU seconds from the first ``train()`` until all are Complete (polling
``list_jobs`` once a second), divided by the number of jobs.

    python benchmarks/scale.py [--list-jobs] [--logs] [--nodes] [--in-flight] [--sizes 1 100 1000]
        [--backends local docker podman] [--log-mib 1024] [--docker-log-mib 256] [--jobs 50] [--limit 4]

Docker/Podman: the torch test image (scripts/containers/build-test-image.sh; ``KFT_TEST_IMAGE``), engines as
in env.sh. The load average is printed with every section: compare rows of one run only.
"""

from __future__ import annotations

import argparse
import builtins
import functools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from kubeflow_trainer import CustomTrainer, Name, TrainerClient

IMAGE = os.environ.get("KFT_TEST_IMAGE", "localhost/kubeflow-trainer-test/torch:cpu")
os.environ.setdefault("KUBEFLOW_TRAINER_PROGRESS", "0")  # no progress display in the tables
PODMAN_URL = os.environ.get("KFT_PODMAN_HOST", "unix:///run/podman/podman.sock")
DEFAULT_NETWORK = {"docker": "bridge", "podman": "podman"}


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def noop() -> None:
    print("noop", flush=True)


def config_for(backend: str, tmp: str, **extra: Any) -> Any:
    if backend == "local":
        from kubeflow_trainer_local import LocalProcessBackendConfig

        return LocalProcessBackendConfig(state_dir=os.path.join(tmp, "state"), **extra)
    common = {
        "image": IMAGE,
        "pull_policy": "Never",
        "queue_dir": os.path.join(tmp, "queue"),
        "stop_timeout": 2,
        **extra,
    }
    if backend == "docker":
        from kubeflow_trainer_docker import DockerBackendConfig

        return DockerBackendConfig(**common)
    from kubeflow_trainer_podman import PodmanBackendConfig

    return PodmanBackendConfig(host=PODMAN_URL, **common)


# list_jobs -------------------------------------------------------------------------------------------
@contextmanager
def counting_opens() -> Iterator[list[int]]:
    """Counts ``open()`` calls in this process (files read by a local ``list_jobs``, /proc included)."""
    count = [0]
    real = builtins.open

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return real(*args, **kwargs)

    builtins.open = counted  # type: ignore[assignment]
    try:
        yield count
    finally:
        builtins.open = real  # type: ignore[assignment]


@contextmanager
def counting_requests(engine: Any) -> Iterator[list[int]]:
    """Counts the HTTP requests the engine's client sends (docker-py's and podman-py's API clients are
    ``requests`` sessions)."""
    api = engine.client.api
    count = [0]
    real = api.send

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return real(*args, **kwargs)

    api.send = counted
    try:
        yield count
    finally:
        del api.send


def add_local_jobs(client: TrainerClient, names: list[str]) -> None:
    """Finished jobs written by the backend's record code from its own rendered requests."""
    from kubeflow_trainer.types import JobStatus
    from kubeflow_trainer_local.store import JobRecord, now_iso

    backend = client.backend
    for name in names:
        request = client.dry_run(trainer=CustomTrainer(func=noop), options=[Name(name)]).request
        record = JobRecord(backend.config.state_dir, name)
        os.makedirs(request.layout.logs_dir)
        os.makedirs(request.layout.workspace)
        record.write_state(
            {
                "created": now_iso(),
                "finished": now_iso(),
                "status": JobStatus.COMPLETE,
                "message": None,
                "nodes": {
                    n.step: {"status": JobStatus.COMPLETE, "rank": n.rank, "exit_code": 0} for n in request.nodes
                },
                "initializers": {},
            }
        )
        record.write_request(request)


def add_container_jobs(client: TrainerClient, names: list[str]) -> None:
    """Each job's node containers created (not started) from its rendered specs, job labels included."""
    backend = client.backend
    engine = backend.engine

    def create(name: str) -> None:
        request = client.dry_run(trainer=CustomTrainer(func=noop), options=[Name(name)]).request
        for spec in request.containers:
            engine.create_container(spec.model_copy(update={"network": DEFAULT_NETWORK[engine.name], "volumes": {}}))

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(create, names))


def remove_container_jobs(client: TrainerClient) -> None:
    engine = client.backend.engine
    label = {client.backend._label("backend"): engine.name}
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(engine.remove_container, [c.id for c in engine.list_container_summaries(label)]))


def timed(call: Callable[[], Any], runs: int) -> tuple[float, Any]:
    values, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = call()
        values.append(time.perf_counter() - start)
    return statistics.median(values), result


def list_jobs_section(backends: list[str], sizes: list[int], runs: int) -> None:
    runs = max(runs, 5)
    print(f"\n## list_jobs ({load()}); median of {runs} calls per cell")
    print(
        f"{'backend':8} {'jobs':>6} {'list_jobs s':>12} {'ms/job':>7} {'per call':>22} {'engine list s':>14} "
        f"{'full read s':>12} {'full read calls':>16} {'train() admission check':>20}"
    )
    for backend in backends:
        tag = uuid.uuid4().hex[:6]
        with tempfile.TemporaryDirectory(prefix="kft-scale-") as tmp:
            extra = {} if backend == "local" else {"label_prefix": f"scale-{tag}.bench.kubeflow.org"}
            client = TrainerClient(config_for(backend, tmp, **extra))
            made: list[str] = []
            try:
                for size in sizes:
                    new = [f"scale-{tag}-{i:04d}" for i in range(len(made), size)]
                    began = time.perf_counter()
                    (add_local_jobs if backend == "local" else add_container_jobs)(client, new)
                    made += new
                    setup = time.perf_counter() - began
                    client.list_jobs()  # warm: the client's first call connects
                    if backend == "local":
                        with counting_opens() as opens:
                            client.list_jobs()
                        per_call = f"{opens[0]} files opened"
                        full = full_calls = engine_list = admission = "-"
                    else:
                        with counting_requests(client.backend.engine) as calls:
                            client.list_jobs()
                        per_call = f"{calls[0]} engine API calls"
                        engine = client.backend.engine
                        label = {client.backend._label("backend"): engine.name}
                        seconds, _ = timed(functools.partial(engine.list_containers, label), runs)
                        with counting_requests(engine) as full_count:
                            engine.list_containers(label)
                        full, full_calls = f"{seconds:.3f}", str(full_count[0])
                        seconds, _ = timed(functools.partial(engine.list_container_summaries, label), runs)
                        engine_list = f"{seconds:.4f}"
                        with counting_requests(engine) as admission_count:
                            began = time.perf_counter()
                            client.backend._running_jobs()  # what every train() asks before it creates a job
                            admission = f"{time.perf_counter() - began:.3f} s, {admission_count[0]} calls"
                    seconds, jobs = timed(client.list_jobs, runs)
                    listed = sorted(j.name for j in jobs)
                    if listed != sorted(made):
                        raise SystemExit(f"{backend}: list_jobs returned {len(listed)} jobs, expected {len(made)}")
                    print(
                        f"{backend:8} {size:6d} {seconds:12.4f} {seconds / size * 1000:7.3f} {per_call:>22} "
                        f"{engine_list:>14} {full:>12} {full_calls:>16} {admission:>20}"
                        f"   (made in {setup:.1f}s; {load()})",
                        flush=True,
                    )
            finally:
                if backend != "local":
                    remove_container_jobs(client)
                    left = client.list_jobs()
                    if left:
                        print(f"{backend}: {len(left)} jobs left after cleanup", file=sys.stderr)
                client.close()


# Logs ------------------------------------------------------------------------------------------------
def print_mib(mib: int) -> None:
    import sys as _sys

    line = b"x" * 99 + b"\n"
    block = line * 10486  # about 1 MiB of 100-byte lines
    out = _sys.stdout.buffer
    for _ in range(mib):
        out.write(block)
    out.flush()


FOLLOW = """
import json, resource, sys, time, importlib
spec = json.loads(sys.argv[1])
config = getattr(importlib.import_module(spec["module"]), spec["cls"]).model_validate_json(spec["config"])
from kubeflow_trainer import TrainerClient
client = TrainerClient(backend_config=config)
client.get_job(spec["name"])
import os
with open("/proc/self/statm") as fh:
    before = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024  # resident now, KiB
start = time.perf_counter()
first = None
size = lines = 0
for line in client.get_job_logs(spec["name"], follow=True, progress=False):
    if first is None:
        first = time.perf_counter()
    size += len(line) + 1
    lines += 1
end = time.perf_counter()
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"s": end - start, "from_first": end - (first or end), "rss_before_mib": before / 1024,
                  "bytes": size, "lines": lines, "peak_growth_mib": growth, "peak_mib": peak}))
"""


def follower(config: Any, name: str) -> subprocess.Popen[str]:
    spec = {
        "module": type(config).__module__,
        "cls": type(config).__name__,
        "config": config.model_dump_json(),
        "name": name,
    }
    return subprocess.Popen([sys.executable, "-c", FOLLOW, json.dumps(spec)], stdout=subprocess.PIPE, text=True)


def result_of(proc: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = proc.communicate(timeout=3600)
    if proc.returncode:
        raise SystemExit(f"the following client failed ({proc.returncode})")
    return dict(json.loads(out.strip().splitlines()[-1]))


def logs_section(backends: list[str], local_mib: int, docker_mib: int) -> None:
    print(f"\n## get_job_logs(follow=True) of a job printing 100-byte lines ({load()})")
    print("seconds from the first line to the last; peak RSS growth: the client's peak RSS minus its RSS before")
    print(
        f"{'backend':8} {'MiB':>6} {'case':28} {'s':>8} {'MB/s':>8} {'peak RSS growth MiB':>20} {'client peak MiB':>16}"
    )
    for backend in backends:
        mib = local_mib if backend == "local" else docker_mib
        with tempfile.TemporaryDirectory(prefix="kft-scale-logs-") as tmp:
            config = config_for(backend, tmp)
            client = TrainerClient(config)
            name = f"scale-logs-{uuid.uuid4().hex[:6]}"
            client.train(trainer=CustomTrainer(func=print_mib, func_args={"mib": mib}), options=[Name(name)])
            try:
                live = follower(config, name)
                got = result_of(live)
                job = client.wait_for_job_status(name, timeout=3600, polling_interval=0.5)
                expected = mib * 10486 * 100
                rows = [("following the running job", got)]
                rows.append(("following the finished job", result_of(follower(config, name))))
                for case, r in rows:
                    if r["bytes"] < expected:
                        raise SystemExit(f"{backend}: the client read {r['bytes']} bytes of {expected}")
                    rate = r["bytes"] / r["from_first"] / 1e6
                    print(
                        f"{backend:8} {mib:6d} {case:28} {r['from_first']:8.2f} {rate:8.1f} "
                        f"{r['peak_growth_mib']:20.1f} {r['peak_mib']:16.1f}",
                        flush=True,
                    )
                if backend == "local":
                    path = os.path.join(config.state_dir, "jobs", name, "logs", "node-0.log")
                    floor_cmd = f"cat {path} > /dev/null"
                    what = "cat of the log file"
                else:
                    floor_cmd = f"docker logs {name}-node-0 > /dev/null 2>&1"
                    what = "docker logs"
                start = time.perf_counter()
                subprocess.run(floor_cmd, shell=True, check=True)
                floor = time.perf_counter() - start
                print(f"{backend:8} {mib:6d} {what:28} {floor:8.2f} {expected / floor / 1e6:8.1f}", flush=True)
                assert job.status == "Complete", job
            finally:
                client.delete_job(name)
                client.close()


# Nodes -----------------------------------------------------------------------------------------------
def rank_up() -> None:
    import os
    import time

    print("RANK-UP", os.environ.get("RANK"), repr(time.time()), flush=True)


def nodes_once(client: TrainerClient, nodes: int) -> tuple[float, float, float]:
    began = time.time()
    name = client.train(trainer=CustomTrainer(func=rank_up, num_nodes=nodes))
    returned = time.time() - began
    try:
        client.wait_for_job_status(name, timeout=900, polling_interval=0.1)
        done = time.time() - began
        ups: dict[str, float] = {}
        for rank in range(nodes):
            for line in client.get_job_logs(name, step=f"node-{rank}"):
                if line.startswith("RANK-UP"):
                    _, r, when = line.split()
                    ups[r] = float(when)
        if len(ups) != nodes:
            raise SystemExit(f"{nodes}-node job {name}: {len(ups)} ranks reported running")
        return max(ups.values()) - began, done, returned
    finally:
        client.delete_job(name)


def floor_nodes(nodes: int, script_dir: str) -> tuple[float, float, float]:
    """The same ranks as plain ``docker run -d`` of ``torchrun`` on a fresh network (the engine's floor):
    seconds to the last ``run`` returning, to every rank running, to every container exited."""
    net = f"kft-scale-floor-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "network", "create", net], check=True, capture_output=True)
    names = [f"{net}-n{r}" for r in range(nodes)]
    try:
        began = time.time()
        for rank, name in enumerate(names):
            subprocess.run(
                [
                    *("docker", "run", "-d", "--name", name, "--hostname", name, "--network", net),
                    *("-v", f"{script_dir}:/work:ro", "-w", "/work", IMAGE, "torchrun"),
                    *(f"--nnodes={nodes}", "--nproc-per-node=1", f"--node-rank={rank}", f"--master-addr={names[0]}"),
                    *("--master-port=29500", "train.py"),
                ],
                check=True,
                capture_output=True,
            )
        returned = time.time() - began
        ups = []
        for name in names:
            subprocess.run(["docker", "wait", name], check=True, capture_output=True)
        done = time.time() - began
        for name in names:
            out = subprocess.run(["docker", "logs", name], check=True, capture_output=True, text=True).stdout
            ups += [float(line.split()[2]) for line in out.splitlines() if line.startswith("RANK-UP")]
        if len(ups) != nodes:
            raise SystemExit(f"floor: {len(ups)} of {nodes} ranks reported running")
        return returned, max(ups) - began, done
    finally:
        for name in names:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", net], capture_output=True, check=False)


def nodes_section(backends: list[str], runs: int) -> None:
    print(f"\n## train() -> every rank running, 1 node vs 8 nodes ({load()}); medians of {runs}")
    print(
        f"{'backend':24} {'nodes':>5} {'train() returned s':>19} {'all ranks running s':>20} {'Complete s':>11}  "
        "runs (ranks running)"
    )
    cases: list[tuple[str, str, dict[str, Any]]] = []
    for backend in backends:
        if backend == "local":
            cases += [("local, hot starts", "local", {}), ("local, torchrun", "local", {"hot_starts": False})]
        elif backend == "docker":
            cases.append(("docker", "docker", {}))
    for label, backend, extra in cases:
        with tempfile.TemporaryDirectory(prefix="kft-scale-nodes-") as tmp:
            client = TrainerClient(config_for(backend, tmp, **extra))
            nodes_once(client, 1)  # warm: environment cached, zygotes started
            for nodes in (1, 8):
                results = [nodes_once(client, nodes) for _ in range(runs)]
                up = statistics.median(r[0] for r in results)
                done = statistics.median(r[1] for r in results)
                returned = statistics.median(r[2] for r in results)
                each = " ".join(f"{r[0]:.2f}" for r in results)
                print(
                    f"{label:24} {nodes:5d} {returned:19.2f} {up:20.2f} {done:11.2f}  {each}   ({load()})", flush=True
                )
            client.close()
    if "docker" in backends:
        from kubeflow_trainer.shipping import build_script

        script_dir = tempfile.mkdtemp(prefix="kft-scale-floor-")
        with open(os.path.join(script_dir, "train.py"), "w") as fh:
            fh.write(build_script(rank_up, None))
        os.chmod(script_dir, 0o755)
        for nodes in (1, 8):
            results = [floor_nodes(nodes, script_dir) for _ in range(runs)]
            returned, up, done = (statistics.median(r[i] for r in results) for i in range(3))
            each = " ".join(f"{r[1]:.2f}" for r in results)
            label = "floor: docker run x N"
            print(
                f"{label:24} {nodes:5d} {returned:19.2f} {up:20.2f} {done:11.2f}  {each}   ({load()})",
                flush=True,
            )


# Jobs in flight --------------------------------------------------------------------------------------
def in_flight_section(jobs: int, limit: int) -> None:
    print(f"\n## {jobs} one-node local jobs in flight, max_running_jobs={limit} ({load()})")
    with tempfile.TemporaryDirectory(prefix="kft-scale-flight-") as tmp:
        client = TrainerClient(config_for("local", tmp, max_running_jobs=limit))
        warm = client.train(trainer=CustomTrainer(func=noop))
        client.wait_for_job_status(warm, timeout=900)
        client.delete_job(warm)
        names: list[str] = []
        tag = uuid.uuid4().hex[:5]
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        wall0 = time.perf_counter()
        for i in range(jobs):
            names.append(client.train(trainer=CustomTrainer(func=noop), options=[Name(f"flight-{tag}-{i:03d}")]))
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        submitted = time.perf_counter() - wall0
        polls = 0
        while True:
            polls += 1
            statuses = {j.name: j.status for j in client.list_jobs() if j.name in names}
            if all(statuses.get(n) in ("Complete", "Failed") for n in names):
                break
            time.sleep(1.0)
        cpu2 = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter() - wall0
        failed = [n for n in names if statuses[n] != "Complete"]
        for name in names:
            client.delete_job(name)
        client.close()

    def cpu(a: Any, b: Any) -> float:
        return (b.ru_utime - a.ru_utime) + (b.ru_stime - a.ru_stime)

    per_job = cpu(cpu0, cpu1) / jobs * 1000
    print(f"submitting: {cpu(cpu0, cpu1):.2f} s CPU in {submitted:.1f} s wall ({per_job:.1f} ms/job)")
    print(f"waiting ({polls} list_jobs polls): {cpu(cpu1, cpu2):.2f} s CPU")
    per_job = cpu(cpu0, cpu2) / jobs * 1000
    print(
        f"total: {cpu(cpu0, cpu2):.2f} s CPU over {wall:.1f} s wall = {per_job:.1f} ms CPU per job; "
        f"{jobs - len(failed)}/{jobs} Complete ({load()})"
    )
    if failed:
        raise SystemExit(f"failed jobs: {failed[:5]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--list-jobs", action="store_true")
    parser.add_argument("--logs", action="store_true")
    parser.add_argument("--nodes", action="store_true")
    parser.add_argument("--in-flight", action="store_true")
    parser.add_argument("--backends", nargs="+", default=["local", "docker", "podman"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[1, 100, 1000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--log-mib", type=int, default=1024)
    parser.add_argument("--docker-log-mib", type=int, default=256)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--limit", type=int, default=4)
    args = parser.parse_args()
    everything = not (args.list_jobs or args.logs or args.nodes or args.in_flight)
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, {load()}")
    if args.list_jobs or everything:
        list_jobs_section(args.backends, sorted(args.sizes), args.runs)
    if args.logs or everything:
        logs_section([b for b in args.backends if b in ("local", "docker")], args.log_mib, args.docker_log_mib)
    if args.nodes or everything:
        nodes_section(args.backends, args.runs)
    if args.in_flight or everything:
        in_flight_section(args.jobs, args.limit)
    print(f"\nend: {load()}")


if __name__ == "__main__":
    main()
