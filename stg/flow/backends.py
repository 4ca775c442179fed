"""Flow backend registry: name -> backend class (see stg.registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stg.registry import Backend, build_backend

if TYPE_CHECKING:
    from stg.flow.base import FlowBackend

BACKENDS = {
    "dis": Backend("stg.flow.dis:DisFlow"),
    "raft": Backend("stg.flow.raft:RaftFlow", device=True),
}


def make_flow_backend(settings: dict[str, Any], device: str | None = None) -> FlowBackend:
    """Build the configured backend; settings, weights and devices are checked here, at job start."""
    return build_backend("flow", "flow", BACKENDS, settings, device)
