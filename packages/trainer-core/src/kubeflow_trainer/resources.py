"""Parsing of ``resources_per_node`` into a backend-neutral :class:`Resources` value.

Accepted keys (upstream spelling first):

- ``cpu``: a number or a Kubernetes quantity (``2``, ``"1.5"``, ``"500m"``).
- ``memory``: bytes as an int, or a quantity (``"10G"``, ``"512Mi"``).
- ``gpu`` or ``nvidia.com/gpu``: a whole number of GPUs.
- ``storage`` / ``ephemeral-storage``: a quantity.
- ``mig-<profile>`` or any other ``vendor/resource`` key: an extended resource count.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "K": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^\s*([+]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]{0,2})\s*$")
_EXTENDED_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$")


def parse_quantity(value: Any, what: str) -> Decimal:
    """Parse a Kubernetes-style quantity (``"500m"``, ``"10Gi"``, ``2``) into a Decimal.

    Raises ``ValueError`` naming ``what`` when the value is not a non-negative quantity.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a number or a quantity string like '2', '500m', '10Gi'; got {value!r}")
    if isinstance(value, (int, float, Decimal)):
        number = Decimal(str(value))
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if not match or match.group(2) not in _SUFFIXES:
            raise ValueError(
                f"{what}: {value!r} is not a quantity; use a number with an optional suffix "
                "such as '2', '500m', '10G' or '512Mi'"
            )
        try:
            number = Decimal(match.group(1)) * _SUFFIXES[match.group(2)]
        except InvalidOperation as exc:  # pragma: no cover - the regex already guards this
            raise ValueError(f"{what}: {value!r} is not a quantity") from exc
    else:
        raise ValueError(f"{what}: expected a number or a quantity string; got {type(value).__name__}")
    if number.is_nan() or number < 0:
        raise ValueError(f"{what}: must not be negative; got {value!r}")
    return number


@dataclass(frozen=True)
class Resources:
    """Resources requested for each node, normalised.

    ``cpu`` is in cores, ``memory`` and ``storage`` in bytes, ``gpu`` a whole count; ``extended`` maps other
    resource names (``nvidia.com/mig-1g.5gb``, ``google.com/tpu``...) to counts. ``raw`` is the user's dict.
    """

    cpu: float | None = None
    memory: int | None = None
    gpu: int | None = None
    storage: int | None = None
    extended: dict[str, int] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """True when nothing was requested."""
        return not self.raw

    def processes_per_node(self) -> int:
        """Processes per node as the Kubeflow torch runtime derives it: GPUs, else whole CPUs, else 1."""
        if self.gpu:
            return self.gpu
        if self.cpu:
            return max(1, math.floor(self.cpu))
        return 1

    def kubernetes_quantities(self) -> dict[str, str]:
        """The request as Kubernetes resource quantities (``cpu``, ``memory``, ``nvidia.com/gpu``...)."""
        out: dict[str, str] = {}
        for key, value in self.raw.items():
            if key == "gpu":
                out["nvidia.com/gpu"] = str(value)
            elif key == "storage":
                out["ephemeral-storage"] = str(value)
            elif key.startswith("mig-"):
                out[f"nvidia.com/{key}"] = str(value)
            else:
                out[key] = str(value)
        return out


def parse_resources(raw: dict[str, Any] | None) -> Resources:
    """Validate and normalise a ``resources_per_node`` dict. Raises ``ValueError`` with the offending key."""
    if not raw:
        return Resources()
    if not isinstance(raw, dict):
        raise ValueError(f"resources_per_node must be a dict like {{'cpu': 2, 'memory': '4Gi'}}; got {raw!r}")
    cpu = memory = gpu = storage = None
    extended: dict[str, int] = {}
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ValueError(f"resources_per_node: keys must be strings; got {key!r}")
        where = f"resources_per_node['{key}']"
        if key == "cpu":
            cpu_q = parse_quantity(value, where)
            if cpu_q == 0:
                raise ValueError(f"{where}: must be greater than 0")
            cpu = float(cpu_q)
        elif key == "memory":
            memory = int(parse_quantity(value, where))
            if memory <= 0:
                raise ValueError(f"{where}: must be greater than 0")
        elif key in ("gpu", "nvidia.com/gpu"):
            gpu = _whole(value, where)
        elif key in ("storage", "ephemeral-storage"):
            storage = int(parse_quantity(value, where))
        elif key.startswith("mig-") or _EXTENDED_KEY.match(key):
            if "/" not in key and not key.startswith("mig-"):
                raise ValueError(
                    f"resources_per_node: unknown resource {key!r}; use cpu, memory, gpu, storage, "
                    "mig-<profile>, or a fully-qualified extended resource such as 'google.com/tpu'"
                )
            extended[key] = _whole(value, where)
        else:
            raise ValueError(f"resources_per_node: {key!r} is not a valid resource name")
    mig = [k for k in extended if k.startswith("mig-") or "/mig-" in k]
    if mig and gpu:
        raise ValueError("resources_per_node: request either whole GPUs ('gpu') or MIG slices, not both")
    if len(mig) > 1:
        raise ValueError(f"resources_per_node: at most one MIG profile per node; got {sorted(mig)}")
    return Resources(cpu=cpu, memory=memory, gpu=gpu, storage=storage, extended=extended, raw=dict(raw))


def _whole(value: Any, where: str) -> int:
    number = parse_quantity(value, where)
    if number != number.to_integral_value():
        raise ValueError(f"{where}: must be a whole number; got {value!r}")
    return int(number)
