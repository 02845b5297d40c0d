"""The conformance kit on the real-kubelet tier: pods really run, so no check is excused for lack of execution.

The jobs run in the torch test image (scripts/containers/build-test-image.sh), which node-up.sh imported into
the node's containerd under the image of the ``torch-distributed`` runtime: the kit's jobs use the runtime's
image unchanged, and the multi-node check runs a gloo all-reduce between two pods that rendezvous through
the JobSet headless service name. node-up.sh sets ``restartPolicy: Never`` and ``backoffLimit: 0`` on that
runtime (see scripts/k8s/README.md, "Findings"), so a failed node's pod and log stay until delete_job.
"""

from __future__ import annotations

import os

import pytest

from kubeflow_trainer.testing import BackendConformance


class TestKubernetesKubeletConformance(BackendConformance):
    backend = "kubernetes"
    torch_available = True
    job_timeout = 180
    xfail = {
        "test_initializers_fill_the_workspace": (
            "the kit's initializers are UrlDatasetInitializer/UrlModelInitializer on paths of this machine, which "
            "the Trainer's initializer images cannot fetch (they take hf://, s3:// and cache:// URIs), so the "
            "backend refuses them before submit; the Trainer's real images downloading from S3 into the job's "
            "volume are checked by test_initializers_kubelet.py"
        ),
        "test_a_killed_initializer_stops_the_job_with_no_client_running": (
            "the kit's initializer downloads from an http:// server of this machine, which the Trainer's "
            "initializer images cannot fetch (refused before submit); a failed initializer stopping the job is "
            "JobSet's failure policy, checked by test_initializers_kubelet.py"
        ),
        "test_preparation_names_the_running_initializer": (
            "the kit's initializer downloads from an http:// server of this machine, which the Trainer's "
            "initializer images cannot fetch (refused before submit); a pod initializer's preparation "
            "('initializing', naming the step) is checked by test_initializers_kubelet.py"
        ),
    }

    @pytest.fixture
    def backend_config(self, k8s_config):
        return k8s_config

    def step_pids(self, client, name, step):  # type: ignore[no-untyped-def]
        """The node pods' processes on this machine, found by the hostname JobSet gives each node's pod
        (``<job>-node-0-<rank>``, in their ``HOSTNAME``): the pods' environment is the runtime's, without the
        variables the kit's default looks for."""
        if not step.startswith("node-"):
            return super().step_pids(client, name, step)
        want = f"HOSTNAME={name}-node-0-{step.removeprefix('node-')}".encode()
        found = []
        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
            try:
                with open(f"/proc/{pid}/environ", "rb") as fh:
                    if want not in fh.read().split(b"\0"):
                        continue
                with open(f"/proc/{pid}/stat") as fh:
                    if fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                        continue
                found.append(int(pid))
            except (OSError, IndexError):
                continue
        return sorted(found)
