"""The one place that imports Ray: lazily, with the install hint, and the cluster connection."""

from __future__ import annotations

import os
from typing import Any

from tali.errors import TaliConfigError

__all__ = ["connect", "require_ray"]


def require_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TaliConfigError(
            "Ray is not installed; install the extra: pip install 'tali-dataset[ray]'"
        ) from exc
    return ray


def connect(address: str | bool | None = True) -> Any:
    """The ``ray`` module, connected: an existing ``ray.init`` is reused; ``True`` or
    ``"local"`` starts a local cluster (every core); any other string is an address
    (``"auto"``, ``"ray://head:10001"``, ``"10.0.0.1:6379"``)."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address in (True, None, "local", ""):
        kwargs["num_cpus"] = os.cpu_count() or 1
    elif isinstance(address, str):
        kwargs["address"] = address
    else:
        raise TaliConfigError(f"ray must be True, 'local' or a cluster address, got {address!r}")
    # Workers import tali from the driver's tree (a source checkout, PYTHONPATH=src).
    path = os.environ.get("PYTHONPATH")
    if path and "address" not in kwargs:
        kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
    ray.init(**kwargs)
    return ray
