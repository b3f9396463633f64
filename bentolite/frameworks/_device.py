"""Which device a framework runnable should use, from the worker's resource assignment."""
from __future__ import annotations

import logging
import os

__all__ = ["assigned_gpu", "torch_device", "cpu_threads"]

logger = logging.getLogger(__name__)


def assigned_gpu() -> bool:
    """True when the scheduler gave this worker a GPU (``CUDA_VISIBLE_DEVICES`` names one)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible in ("", "-1"):
        return False
    first = visible.split(",")[0].strip()
    if not (first.isdigit() or first.startswith(("GPU-", "MIG-"))):
        raise ValueError(
            f"CUDA_VISIBLE_DEVICES={visible!r}: expected GPU indices such as '0' or '1,2' (or GPU UUIDs)"
        )
    return True


def torch_device() -> str:
    """``"cuda:0"`` (the first visible GPU) when one is assigned and usable, else ``"cpu"``."""
    if not assigned_gpu():
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        logger.warning(
            "CUDA_VISIBLE_DEVICES=%s but torch sees no CUDA device; running on cpu",
            os.environ.get("CUDA_VISIBLE_DEVICES"),
        )
        return "cpu"
    # CUDA_VISIBLE_DEVICES renumbers the visible GPUs from 0, so the assigned one is cuda:0.
    return "cuda:0"


def cpu_threads() -> int:
    """Threads a CPU worker may use: its allocation (``OMP_NUM_THREADS``), else every CPU."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return os.cpu_count() or 1
