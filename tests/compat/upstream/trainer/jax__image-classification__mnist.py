# Upstream example jax__image-classification__mnist: https://github.com/kubeflow/trainer/blob/8c0f5059bd51ec3ba6d6a6a7b2e1471de7bc13b3/examples/jax/image-classification/mnist.ipynb
# Repository kubeflow/trainer, path examples/jax/image-classification/mnist.ipynb, commit 8c0f5059bd51ec3ba6d6a6a7b2e1471de7bc13b3 (Apache-2.0).
# Written by tests/compat/extract.py; do not edit (edits go in tests/compat/substitutions.py).

# %% [cell 0]
 #!pip install -U kubeflow

# %% [cell 1]
def jax_train_mnist():
    import os
    import time
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx
    import optax

    # Initialize JAX distributed using environment variables set by the runtime.
    coordinator_address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    num_processes = int(os.environ.get("JAX_NUM_PROCESSES", 1))
    process_id = int(os.environ.get("JAX_PROCESS_ID", 0))

    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )

    print(f"JAX distributed initialized: Process {process_id}/{num_processes}")
    print(f"Available devices: {jax.devices()}")

    # Define simple MLP model with Flax NNX.
    class MLP(nnx.Module):
        def __init__(self, in_dims: int, hidden_dims: int, out_dims: int, *, rngs: nnx.Rngs):
            self.linear1 = nnx.Linear(in_dims, hidden_dims, rngs=rngs)
            self.linear2 = nnx.Linear(hidden_dims, hidden_dims, rngs=rngs)
            self.linear3 = nnx.Linear(hidden_dims, out_dims, rngs=rngs)

        def __call__(self, x):
            x = nnx.relu(self.linear1(x))
            x = nnx.relu(self.linear2(x))
            return self.linear3(x)

    # Download MNIST dataset.
    def load_mnist():
        import urllib.request
        import gzip

        def download(url, filename):
            filepath = f"/tmp/{filename}"
            if not os.path.exists(filepath):
                urllib.request.urlretrieve(url, filepath)
            with gzip.open(filepath, "rb") as f:
                data = np.frombuffer(f.read(), np.uint8, offset=16 if "images" in filename else 8)
            return data

        base_url = "https://storage.googleapis.com/cvdf-datasets/mnist/"
        train_images = download(base_url + "train-images-idx3-ubyte.gz", "train-images").reshape(-1, 784)
        train_labels = download(base_url + "train-labels-idx1-ubyte.gz", "train-labels")
        return train_images.astype(np.float32) / 255.0, train_labels

    # Load and partition dataset across processes.
    if process_id == 0:
        print("Downloading MNIST dataset...")
    train_images, train_labels = load_mnist()

    # Partition data for distributed training.
    samples_per_process = len(train_images) // num_processes
    start_idx = process_id * samples_per_process
    end_idx = start_idx + samples_per_process
    local_images = train_images[start_idx:end_idx]
    local_labels = train_labels[start_idx:end_idx]

    print(f"Process {process_id}: Training on samples {start_idx} to {end_idx}")

    # Create model and split into graphdef + state for functional JIT.
    model = MLP(in_dims=784, hidden_dims=128, out_dims=10, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)

    # Create optimizer (functional - no stateful wrapper).
    tx = optax.adam(learning_rate=0.001)
    opt_state = tx.init(state)

    # Pure functional training step with @jax.jit.
    @jax.jit
    def train_step(state, opt_state, x, y):
        def loss_fn(state):
            model = nnx.merge(graphdef, state)
            logits = model(x)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state)
        updates, new_opt_state = tx.update(grads, opt_state, state)
        new_state = optax.apply_updates(state, updates)
        acc = jnp.mean(jnp.argmax(logits, axis=-1) == y)
        return loss, acc, new_state, new_opt_state

    # Warmup JIT compilation before training.
    dummy_x = jnp.zeros((1, 784))
    dummy_y = jnp.zeros(1, dtype=jnp.int32)
    _ = train_step(state, opt_state, dummy_x, dummy_y)
    print(f"Process {process_id}: JIT warmup complete")

    # Training loop.
    BATCH_SIZE = 128
    EPOCHS = 5

    if process_id == 0:
        print(f"Starting training for {EPOCHS} epochs...")

    for epoch in range(EPOCHS):
        epoch_start = time.perf_counter()
        total_loss = 0.0
        total_acc = 0.0
        num_batches = 0

        # Shuffle local data.
        perm = np.random.permutation(len(local_images))
        local_images = local_images[perm]
        local_labels = local_labels[perm]

        for i in range(0, len(local_images), BATCH_SIZE):
            batch_x = jnp.array(local_images[i:i + BATCH_SIZE])
            batch_y = jnp.array(local_labels[i:i + BATCH_SIZE])

            loss, acc, state, opt_state = train_step(state, opt_state, batch_x, batch_y)
            total_loss += float(loss)
            total_acc += float(acc)
            num_batches += 1

        avg_loss = total_loss / num_batches
        avg_acc = total_acc / num_batches

        print(f"Epoch {epoch + 1}/{EPOCHS} - Loss: {avg_loss:.4f}, Acc: {avg_acc:.4f}, Time: {time.perf_counter() - epoch_start:.2f}s")

    print(f"Process {process_id}: Training complete!")

# %% [cell 2]
from kubeflow.trainer import CustomTrainer, TrainerClient

client = TrainerClient()

# %% [cell 3]
for runtime in client.list_runtimes():
    print(runtime)

# %% [cell 4]
#parameters
num_cpu=3
num_gpu=0
num_nodes=3

# %% [cell 5]
resources_per_node = {
    "cpu": num_cpu,
}
if num_gpu > 0:
    resources_per_node["gpu"] = num_gpu

job_name = client.train(
    trainer=CustomTrainer(
        func=jax_train_mnist,
        # Set how many JAX nodes you want to use for distributed training.
        num_nodes=num_nodes,
        resources_per_node=resources_per_node,
    ),
    runtime="jax-distributed",
)

print(f"Training job {job_name} submitted with {num_cpu} CPU and {num_gpu} GPU")

# %% [cell 6]
# Wait for the running status.
client.wait_for_job_status(name=job_name, status={"Running"})

# %% [cell 7]
for c in client.get_job(name=job_name).steps:
    print(f"Step: {c.name}, Status: {c.status}, Devices: {c.device} x {c.device_count}\n")

# %% [cell 8]
for i in range(3):
    print(f"\n** Distributed JAX env on node-{i} **")
    print(f"=====================================")
    print("\n".join(TrainerClient().get_job_logs(name=job_name, follow=True, step=f"node-{i}")))

# %% [cell 9]
client.wait_for_job_status(name=job_name, timeout=20)

# %% [cell 10]
#client.delete_job(job_name)
