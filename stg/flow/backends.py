"""Flow backend registry: settings dict -> backend object."""

from __future__ import annotations

from typing import Any

from stg.errors import InputError
from stg.flow.base import FlowBackend


def make_flow_backend(settings: dict[str, Any]) -> FlowBackend:
    """Build the configured backend; weights and devices are checked here, at job start."""
    backend = settings.get("backend", "dis")
    if backend == "dis":
        from stg.flow.dis import DisFlow

        return DisFlow(**settings.get("dis", {}))
    if backend == "raft":
        from stg.flow.raft import RaftFlow

        return RaftFlow(device=settings.get("device", "auto"), **settings.get("raft", {}))
    raise InputError("stages.flow.backend", f"unknown flow backend '{backend}' (expected dis or raft)")
