"""The Kubernetes backend runs the conformance kit against the test control plane.

KWOK is a fake kubelet: pods go through their phases but run no container, so checks that read what the
training function printed, or need it to fail, cannot pass there. They are declared below as strict
expected failures (they run, and the run fails if they start passing); on a real cluster they hold.
"""

from __future__ import annotations

import pytest

from kubeflow_trainer.testing import BackendConformance

NO_EXECUTION = "KWOK runs no container: the function's output and exit code do not exist on the test plane"


class TestKubernetesConformance(BackendConformance):
    backend = "kubernetes"
    torch_available = False
    job_timeout = 120
    xfail = {
        "test_train_completes_with_args_env_and_logs": NO_EXECUTION,
        "test_logs_follow_streams_lines_as_written": NO_EXECUTION,
        "test_failure_raises_promptly": NO_EXECUTION,
        "test_failure_names_the_users_exception_and_line": NO_EXECUTION,
        "test_logs_tail_merged_and_progress_bars": NO_EXECUTION,
        "test_multi_node_environment": NO_EXECUTION,
        "test_a_failed_node_stops_its_peers_with_no_client_running": NO_EXECUTION,
        "test_a_killed_initializer_stops_the_job_with_no_client_running": NO_EXECUTION,
        "test_max_restarts_restarts_a_failed_node": NO_EXECUTION,
        "test_preparation_names_the_running_initializer": NO_EXECUTION,
        "test_jobs_outlive_the_client": NO_EXECUTION,
        "test_workspace_is_the_working_directory_on_every_node": NO_EXECUTION
        + " (the ConfigMap and the pods' mount are checked in test_cluster_workspace.py; the kit runs on the kubelet"
        " tier)",
        "test_initializers_fill_the_workspace": (
            "the kit's initializers copy local paths, which the Trainer's initializer images cannot fetch "
            "(refused before submit; hf:// and s3:// are tested in test_cluster.py), and KWOK runs no containers"
        ),
    }

    @pytest.fixture
    def backend_config(self, k8s_config):
        return k8s_config
