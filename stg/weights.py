"""Finding, loading and fingerprinting model checkpoints, shared by all torch backends.

Nothing here downloads: a run must not depend on the network, and a missing or wrong
checkpoint must fail at the start of its job with the file and the setting to fix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stg.errors import InputError

if TYPE_CHECKING:
    import torch

_EXAMPLES = 3  # how many offending keys a message names; a full list can run to hundreds


def torchvision_cache_dir() -> Path:
    """Where torchvision's `weights=...` downloads land (honours $TORCH_HOME at call time)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weights(path: str | Path | None, torchvision_filename: str | None, setting: str) -> Path:
    """The checkpoint to load: the configured path, else torchvision's cached file; never a download."""
    if path is not None and str(path) != "":
        configured = Path(path).expanduser()
        if not configured.is_file():
            raise InputError(configured, f"weights file is missing (setting {setting})")
        return configured
    if torchvision_filename is None:
        raise InputError(setting, "no weights file configured and this model has no torchvision default; set it")
    cached = torchvision_cache_dir() / torchvision_filename
    if cached.is_file():
        return cached
    raise InputError(
        setting,
        f"no weights file configured and torchvision's cache has no {torchvision_filename} "
        f"(looked for {cached}); set {setting} to a checkpoint path, or place the file there "
        "(nothing is downloaded at run time)",
    )


def _examples(keys: list[str]) -> str:
    shown = ", ".join(keys[:_EXAMPLES])
    return shown + (", ..." if len(keys) > _EXAMPLES else "")


def _explain_load_failure(exc: Exception) -> str:
    """torch's own message advises weights_only=False, which we never do; say what is actually wrong."""
    text = str(exc)
    unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if unsafe:
        return (
            f"checkpoint holds a Python object ({unsafe.group(1)}) that safe loading refuses; "
            "re-save only the model's state dict"
        )
    reason = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    if reason:
        return f"cannot read as a torch checkpoint (not one, or corrupt: {reason.group(1).strip()})"
    first = text.strip().split(". ")[0].splitlines()[0] if text.strip() else ""
    return f"cannot read as a torch checkpoint ({type(exc).__name__}: {first})"


def _unwrap(obj: Any) -> Mapping[str, Any] | None:
    """Accept a bare state dict or the common {'state_dict': ...} / {'model': ...} wrappers."""
    if not isinstance(obj, Mapping):
        return None
    for key in ("state_dict", "model"):
        inner = obj.get(key)
        if isinstance(inner, Mapping):
            return inner
    return obj


def load_state_dict_checked(model: torch.nn.Module, path: str | Path, setting: str) -> None:
    """Load a checkpoint strictly, turning torch's long errors into one line that names the file and setting."""
    import torch

    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, pickle with disallowed globals, truncated file, ...
        raise InputError(path, f"{_explain_load_failure(exc)} (setting {setting})") from exc

    state = _unwrap(obj)
    if state is None or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(path, f"not a state dict of tensors (got {type(obj).__name__}) (setting {setting})")
    # Checkpoints saved from DataParallel/DDP prefix every key with "module.".
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s) ({_examples(missing)})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s) ({_examples(unexpected)})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es) ({_examples(mismatched)})")
    if problems:
        raise InputError(
            path,
            f"checkpoint does not fit {type(model).__name__}: {'; '.join(problems)}; "
            f"is it for another model? (setting {setting})",
        )
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # dtype trouble and anything the checks above did not foresee
        raise InputError(path, f"cannot load into {type(model).__name__}: {exc} (setting {setting})") from exc


def weights_identity(path: str | Path) -> dict[str, Any]:
    """Name, size and content hash, so cached outputs record exactly which weights made them."""
    path = Path(path)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()[:16]}
