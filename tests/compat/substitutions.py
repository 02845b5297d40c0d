"""The declared, reviewed edits to upstream's examples: the ONLY changes besides the import rewrite.

Two kinds are allowed, and each entry says why:

- ``SUBSTITUTIONS``: a dataset or model that needs the internet is swapped for a small synthetic one, and
  an example sized for GPUs is scaled down (epochs, dataset size). Never an SDK call.
- ``SKIPPED_CELLS``: a cell that cannot apply on this machine at all (e.g. a macOS-only socket path).

Each ``old`` text must occur in the example exactly ``count`` times, so an upstream change that moves it
fails the suite instead of silently running the unedited download.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Substitution:
    """Replace ``old`` by ``new`` (``count`` occurrences, no more, no fewer) for ``reason``."""

    old: str
    new: str
    reason: str
    count: int = 1


_FAKE_MNIST = "datasets.FakeData(size=512, image_size=(1, 28, 28), num_classes=10, "
_NO_INTERNET = "downloads (Fashion)MNIST from the internet; a synthetic torchvision FakeData of the same shape"

SUBSTITUTIONS: dict[str, tuple[Substitution, ...]] = {
    "trainer/local__local-training-mnist": (
        Substitution(
            "datasets.MNIST(\n        './data',\n        train=True,\n        download=True,\n        transform=",
            _FAKE_MNIST + "transform=",
            _NO_INTERNET,
        ),
    ),
    "trainer/local__local-container-mnist": (
        Substitution(
            'datasets.FashionMNIST(\n            "./data",\n            train=True,\n            download=True,\n'
            "        )",
            '"rank 0 would download FashionMNIST here"',
            _NO_INTERNET + " (nothing to download)",
        ),
        Substitution(
            'datasets.FashionMNIST(\n        "./data",\n        train=True,\n        download=False,\n'
            "        transform=",
            _FAKE_MNIST + "transform=",
            _NO_INTERNET,
        ),
    ),
    "trainer/pytorch__image-classification__mnist": (
        Substitution(
            'datasets.FashionMNIST(\n            "./data",\n            train=True,\n            download=True,\n'
            "            transform=",
            _FAKE_MNIST + "transform=",
            _NO_INTERNET,
        ),
        Substitution(
            'datasets.FashionMNIST(\n        "./data",\n        train=True,\n        download=False,\n'
            "        transform=",
            _FAKE_MNIST + "transform=",
            _NO_INTERNET,
        ),
    ),
    "trainer/pytorch__speech-recognition__speech-recognition": (
        Substitution(
            "torchaudio.datasets.SPEECHCOMMANDS(root=str(data_path), download=True)",
            "[__import__('soundfile').write(str((data_path / 'SpeechCommands' / 'speech_commands_v0.02' / w)"
            ".mkdir(parents=True, exist_ok=True) or data_path / 'SpeechCommands' / 'speech_commands_v0.02' / w"
            " / f'{i}.wav'), __import__('numpy').random.default_rng(i).standard_normal(16000).astype('float32'),"
            " 16000) for w in ('yes', 'no') for i in range(8)]",
            "downloads Speech Commands (~2 GB) from the internet; 16 synthetic 1 s noise clips in 2 classes, same"
            " folder layout",
        ),
    ),
    "sdk/docs__quickstart": (
        Substitution(
            "datasets.MNIST('./data', train=True, download=True, transform=transform)",
            "datasets.FakeData(size=512, image_size=(1, 28, 28), num_classes=10, transform=transform)",
            _NO_INTERNET,
        ),
        Substitution("for epoch in range(5):", "for epoch in range(1):", "5 epochs scaled down to 1 on 2 CPU cores"),
    ),
}

SKIPPED_CELLS: dict[str, dict[int, str]] = {
    "sdk/docs__local-development": {
        2: "the 'Example for macOS' block points container_host at Docker Desktop's macOS socket",
    },
}

ENVIRONMENT: dict[str, dict[str, tuple[str, str]]] = {
    "trainer/torchtune__llama3_2__alpaca-trainjob-yaml": {
        "HF_TOKEN": (
            "hf_compat_placeholder_token",
            "the notebook reads the user's Hugging Face token from the environment (os.environ['HF_TOKEN']); "
            "KWOK runs no initializer pod, so a placeholder only reaches the TrainJob's initializer Secret",
        ),
    },
}
"""Variables the example expects the user's environment to hold (never an edit of the example's code):
example key -> name -> (value, reason)."""
