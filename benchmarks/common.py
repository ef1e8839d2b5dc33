"""What every benchmark shares: the machine description and how results are written."""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
from pathlib import Path
from typing import Any

import torch

from sciddm.io import atomic_path

__all__ = ["machine_info", "write_result"]


def machine_info() -> dict[str, Any]:
    """Platform, processor, Python, CPU count, torch version and threads of this run, the date (UTC) and the GPU if any."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **({"gpu": torch.cuda.get_device_name(0)} if torch.cuda.is_available() else {})}


def usable_device(name: str) -> torch.device:
    """``torch.device(name)`` if this machine can run on it; ValueError (for ``parser.error``) if the
    name is not a device or the device is absent (e.g. ``cuda`` without a GPU)."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"--device {name!r} is not a torch device (e.g. cpu, cuda, cuda:1): {e}") from None
    if device.type == "cuda" and (not torch.cuda.is_available()
                                  or (device.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available here")
    return device


def _strict(obj: Any) -> Any:
    """NaN/Inf (a diverged run, an undefined metric) become JSON ``null``; numpy scalars become numbers."""
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy / torch scalars
        try:
            obj = obj.item()
        except (ValueError, RuntimeError):
            return obj
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_result(obj: Any, path: str | os.PathLike[str], *, indent: int = 2) -> Path:
    """Write a benchmark result as strict JSON, atomically (``sciddm.io.atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_strict(obj), indent=indent, allow_nan=False))
    return Path(path)
