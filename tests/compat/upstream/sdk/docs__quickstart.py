# Upstream example docs__quickstart: https://github.com/kubeflow/sdk/blob/22a7a3fb921f531fbc2d1be1279193e062edee9b/docs/source/getting-started/quickstart.rst
# Repository kubeflow/sdk, path docs/source/getting-started/quickstart.rst, commit 22a7a3fb921f531fbc2d1be1279193e062edee9b (Apache-2.0).
# Written by tests/compat/extract.py; do not edit (edits go in tests/compat/substitutions.py).

# %% [cell 0]
def train_mnist():
    """Train a simple model on MNIST."""
    import torch
    import torch.nn as nn
    from torchvision import datasets, transforms

    # Load data
    transform = transforms.ToTensor()
    train_data = datasets.MNIST('./data', train=True, download=True, transform=transform)
    train_loader = torch.utils.data.DataLoader(train_data, batch_size=64)

    # Simple model
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 128),
        nn.ReLU(),
        nn.Linear(128, 10)
    )

    optimizer = torch.optim.Adam(model.parameters())
    criterion = nn.CrossEntropyLoss()

    # Train
    for epoch in range(5):
        for batch_idx, (data, target) in enumerate(train_loader):
            optimizer.zero_grad()
            output = model(data)
            loss = criterion(output, target)
            loss.backward()
            optimizer.step()

            if batch_idx % 100 == 0:
                print(f"Epoch {epoch}, Batch {batch_idx}, Loss: {loss.item():.4f}")

# %% [cell 1]
from kubeflow.trainer import TrainerClient
from kubeflow.trainer.types import CustomTrainer

# Create client (connects to your Kubernetes cluster)
client = TrainerClient()

# Submit the training job
job_name = client.train(
    trainer=CustomTrainer(func=train_mnist)
)

print(f"Training job started: {job_name}")

# %% [cell 2]
# Stream logs as they happen
for line in client.get_job_logs(job_name, follow=True):
    print(line)

# %% [cell 3]
job = client.get_job(job_name)
print(f"Status: {job.status}")

# %% [cell 4]
from kubeflow.trainer.options import Name, Labels, Annotations

# Submit the job with custom name, labels, and annotations
job_name = client.train(
    trainer=CustomTrainer(func=train_mnist),
    options=[
        Name("my-mnist-job"),
        Labels({"team": "ml-platform"}),
        Annotations({"description": "Quickstart training job"}),
    ]
)

# %% [cell 5]
# Blocks until complete (or timeout)
client.wait_for_job_status(job_name)
print("Training complete!")

# %% [cell 6]
from kubeflow.trainer import TrainerClient
from kubeflow.trainer.backends.localprocess import LocalProcessBackendConfig

# Run locally instead of on Kubernetes
client = TrainerClient(backend_config=LocalProcessBackendConfig())

job_name = client.train(trainer=CustomTrainer(func=train_mnist))
