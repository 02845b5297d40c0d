"""How far an image pull is, from the engine's layer reports (:class:`~kubeflow_trainer_containers.engine.
LayerProgress`), as the :class:`~kubeflow_trainer.types.Preparation` a progress display shows:
``pulling image: 2/5 layers (repo/image:tag, 81.2/310.0 MB)``.

``train()`` pulls a missing image before it creates anything, so the job does not exist yet: the backend
shows the pull with a :class:`~kubeflow_trainer.progress.ProgressDisplay` of its own while ``train()`` runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kubeflow_trainer.types import Preparation
from kubeflow_trainer_containers.engine import LayerProgress

PHASE = "pulling image"


@dataclass
class _Layer:
    state: str
    current: int = 0
    total: int | None = None


def megabytes(n: int) -> str:
    """``81.2`` for 81,234,567 bytes (decimal megabytes, as the engines print them)."""
    return f"{n / 1e6:.1f}"


class PullProgress:
    """Feed it an image's layer reports (:meth:`feed`); :meth:`preparation` says how far the pull is."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.layers: dict[str, _Layer] = {}
        self.started = time.monotonic()

    def feed(self, report: LayerProgress) -> None:
        """Take one report (a later report of a layer replaces its state and keeps the byte counts known)."""
        layer = self.layers.setdefault(report.layer, _Layer(report.state))
        layer.state = report.state
        if report.total:
            layer.total = report.total
        if report.current is not None:
            layer.current = report.current
        if report.state in ("extracting", "done") and layer.total:
            layer.current = layer.total  # downloaded in full

    @property
    def done(self) -> int:
        """Layers in local storage: pulled, or there already."""
        return sum(1 for layer in self.layers.values() if layer.state in ("done", "present"))

    def preparation(self) -> Preparation:
        """``pulling image: <done>/<layers> layers (<image>[, <MB done>/<MB known> MB])``."""
        sized = [layer for layer in self.layers.values() if layer.total and layer.state != "present"]
        detail = self.image
        if sized:
            got = sum(min(layer.current, layer.total or 0) for layer in sized)
            detail += f", {megabytes(got)}/{megabytes(sum(layer.total or 0 for layer in sized))} MB"
        known = len(self.layers) or None
        return Preparation(phase=PHASE, done=self.done if known else None, total=known, unit="layers", detail=detail)
