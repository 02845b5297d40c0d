"""The conformance kit on the real-kubelet tier: pods really run, so no check is excused for lack of execution.

The jobs run in the torch test image (scripts/containers/build-test-image.sh), which node-up.sh imported into
the node's containerd under the image of the ``torch-distributed`` runtime: the kit's jobs use the runtime's
image unchanged, and the multi-node check runs a gloo all-reduce between two pods that rendezvous through
the JobSet headless service name. node-up.sh sets ``restartPolicy: Never`` and ``backoffLimit: 0`` on that
runtime (see scripts/k8s/README.md, "Findings"), so a failed node's pod and log stay until delete_job.
"""

from __future__ import annotations

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
    }

    @pytest.fixture
    def backend_config(self, k8s_config):
        return k8s_config
