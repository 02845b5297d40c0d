"""``get_tpu_num_nodes``: how many nodes (hosts) a multi-slice TPU job needs, as upstream computes it.

Standard library only (it is also shipped into jobs, see :mod:`kubeflow_trainer.jobside`).
"""

from __future__ import annotations


def get_tpu_num_nodes(num_slices: int, topology: str, chips_per_host: int = 4) -> int:
    """The total number of hosts across ``num_slices`` TPU slices of ``topology`` (e.g. ``"2x2"``, ``"2x2x4"``).

    Args:
        num_slices: Number of TPU slices (> 0).
        topology: Slice topology ``AxB`` or ``AxBxC`` of positive integers.
        chips_per_host: TPU chips per VM host (4 on ct6e-standard-4t, 8 on ct6e-standard-8t).

    Raises:
        ValueError: a non-positive count, an empty or malformed topology, or a multi-host slice whose chip
            count is not a multiple of ``chips_per_host``.
    """
    if num_slices <= 0:
        raise ValueError(f"num_slices must be positive, got: {num_slices}")
    if chips_per_host <= 0:
        raise ValueError(f"chips_per_host must be positive, got: {chips_per_host}")
    if not topology:
        raise ValueError("TPU topology must be specified, e.g. topology='2x2' or '2x2x2'.")
    try:
        dims = [int(d) for d in topology.lower().split("x")]
    except ValueError:
        raise ValueError(
            f"Invalid topology format: '{topology}'. Must be formatted as 'AxB' or 'AxBxC' (e.g. '2x2', '2x2x2')."
        ) from None
    if len(dims) not in (2, 3):
        raise ValueError(
            f"Invalid topology format: '{topology}'. Must contain exactly 2 or 3 dimensions (e.g. '2x2', '2x2x2')."
        )
    if any(dim <= 0 for dim in dims):
        raise ValueError(f"TPU topology dimensions must be positive, got: '{topology}'.")
    chips_per_slice = 1
    for dim in dims:
        chips_per_slice *= dim
    if chips_per_slice < chips_per_host:
        return num_slices
    if chips_per_slice % chips_per_host:
        raise ValueError(
            f"Total TPU chips in slice ({chips_per_slice}) must be cleanly divisible by chips_per_host "
            f"({chips_per_host}); pass the chips_per_host of your VM type."
        )
    return num_slices * (chips_per_slice // chips_per_host)
