# Upstream example torchtune__qwen2_5__qwen2.5-1.5B-with-alpaca: https://github.com/kubeflow/trainer/blob/8c0f5059bd51ec3ba6d6a6a7b2e1471de7bc13b3/examples/torchtune/qwen2_5/qwen2.5-1.5B-with-alpaca.ipynb
# Repository kubeflow/trainer, path examples/torchtune/qwen2_5/qwen2.5-1.5B-with-alpaca.ipynb, commit 8c0f5059bd51ec3ba6d6a6a7b2e1471de7bc13b3 (Apache-2.0).
# Written by tests/compat/extract.py; do not edit (edits go in tests/compat/substitutions.py).
# Notebook magics dropped (IPython syntax, not Python): ['!pip install kubeflow']

# %% [cell 0]


# %% [cell 1]
# List all available Kubeflow Training Runtimes.
from kubeflow.trainer import *
from kubeflow_trainer_api import models

client = TrainerClient()
for runtime in client.list_runtimes():
    print(runtime)

# %% [cell 2]
job_name = client.train(
    runtime="torchtune-qwen2.5-1.5b",
    initializer=Initializer(
        dataset=HuggingFaceDatasetInitializer(
            storage_uri="hf://tatsu-lab/alpaca/data"
        ),
        model=HuggingFaceModelInitializer(
            storage_uri="hf://Qwen/Qwen2.5-1.5B-Instruct",
        )
    ),
    trainer=BuiltinTrainer(
        config=TorchTuneConfig(
            dataset_preprocess_config=TorchTuneInstructDataset(
                source=DataFormat.PARQUET, split="train[:1000]"
            ),
            resources_per_node={
                "memory": "128G",
                "gpu": 2,
            },
            
        )
    )
)

# %% [cell 3]

# Wait for the running status.
client.wait_for_job_status(name=job_name, status={"Running"})

# %% [cell 4]
from kubeflow.trainer.constants import constants

for line in client.get_job_logs(job_name, follow=True, step=constants.DATASET_INITIALIZER):
    print(line)

# %% [cell 5]
for line in client.get_job_logs(job_name, follow=True, step=constants.MODEL_INITIALIZER):
    print(line)

# %% [cell 6]
for c in client.get_job(name=job_name).steps:
    print(f"Step: {c.name}, Status: {c.status}, Devices: {c.device} x {c.device_count}\n")

for line in client.get_job_logs(job_name, follow=True):
    print(line)

# %% [cell 7]
job = client.wait_for_job_status(name=job_name, timeout=1200)
