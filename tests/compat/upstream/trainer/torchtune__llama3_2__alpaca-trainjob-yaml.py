# Upstream example torchtune__llama3_2__alpaca-trainjob-yaml: https://github.com/kubeflow/trainer/blob/8c0f5059bd51ec3ba6d6a6a7b2e1471de7bc13b3/examples/torchtune/llama3_2/alpaca-trainjob-yaml.ipynb
# Repository kubeflow/trainer, path examples/torchtune/llama3_2/alpaca-trainjob-yaml.ipynb, commit 8c0f5059bd51ec3ba6d6a6a7b2e1471de7bc13b3 (Apache-2.0).
# Written by tests/compat/extract.py; do not edit (edits go in tests/compat/substitutions.py).

# %% [cell 0]
# !pip install -U kubeflow

# %% [cell 1]
# List all available Kubeflow Training Runtimes.
from kubeflow.trainer import *
from kubeflow_trainer_api import models
import os

client = TrainerClient()
for runtime in client.list_runtimes():
    print(runtime)

# %% [cell 2]
job_name = client.train(
    runtime="torchtune-llama3.2-1b",
    initializer=Initializer(
        dataset=HuggingFaceDatasetInitializer(
            storage_uri="hf://tatsu-lab/alpaca/data"
        ),
        model=HuggingFaceModelInitializer(
            storage_uri="hf://meta-llama/Llama-3.2-1B-Instruct",
            access_token=os.environ["HF_TOKEN"] # Replace with your Hugging Face token,
        )
    ),
    trainer=BuiltinTrainer(
        config=TorchTuneConfig(
            dataset_preprocess_config=TorchTuneInstructDataset(
                source=DataFormat.PARQUET, split="train[:1000]"
            ),
            resources_per_node={
                "memory": "200G",
                "gpu": 1,
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
client.wait_for_job_status(name=job_name, timeout=20)
