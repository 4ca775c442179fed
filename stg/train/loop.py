"""The training loop, written once: AdamW, warm-up + cosine schedule, AMP on CUDA, atomic checkpoints, resume.

Every source of randomness of step s is seeded from (seed, s) (numpy generator handed to the task, torch's
global generator for dropout), and the learning rate is a pure function of s. A run resumed from the
checkpoint of step k therefore repeats exactly what an uninterrupted run does from step k on: on the CPU
with a fixed seed both end with the same weights.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from stg.errors import InputError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class Recipe:
    """How long and how fast to train; the model-specific parts live in the task."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float = 1e-4
    warmup_steps: int = 0
    schedule: str = "cosine"            # cosine decay to lr * min_lr_ratio after warm-up | constant
    min_lr_ratio: float = 0.05
    eval_every: int = 0                 # steps between evaluations (one "epoch" of the history); 0: at the end only
    checkpoint_every: int = 50          # steps between checkpoints (also every checkpoint_seconds)
    checkpoint_seconds: float = 180.0
    grad_clip: float | None = 5.0
    amp: bool = True                    # mixed precision on CUDA (bf16 where supported); ignored on the CPU
    seed: int = 0

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise InputError("training.schedule", f"unknown schedule {self.schedule!r} (one of {', '.join(SCHEDULES)})")
        if self.warmup_steps >= self.steps > 0 and self.warmup_steps:
            raise InputError("training.warmup_steps", f"{self.warmup_steps} warm-up steps leave nothing of "
                             f"{self.steps} steps")

    def learning_rate(self, step: int) -> float:
        """The rate of step `step` (0-based): linear warm-up, then cosine decay (or constant)."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return self.lr
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        floor = self.lr * self.min_lr_ratio
        return floor + (self.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class TrainTask(Protocol):
    """What a model brings to the loop: network, samples, loss and (optionally) a quality measure."""

    name: str

    def build_network(self) -> torch.nn.Module:
        """A freshly initialised network (pretrained encoder weights loaded here)."""
        ...

    def batch(self, step: int, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of one step, drawn with `rng` only (so a resumed run draws the same)."""
        ...

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        ...

    def evaluate(self, model: torch.nn.Module, device: torch.device) -> dict[str, float]:
        """Quality figures for the history (e.g. J on held-out crops); {} when there is nothing to measure."""
        ...


@dataclass
class TrainResult:
    model: Any                          # the trained torch.nn.Module (on the CPU)
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    resumed_from: int | None = None
    device: str = "cpu"


def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step) % (2**63 - 1)


def _save_atomically(payload: dict[str, Any], path: Path) -> None:
    """A killed job leaves the previous checkpoint intact, never a truncated one."""
    import torch

    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _load_checkpoint(path: Path, recipe: Recipe, task_name: str) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(path, f"training checkpoint cannot be read ({type(exc).__name__}: {exc}); delete it to "
                         "start over") from exc
    if not isinstance(state, dict) or state.get("task") != task_name:
        found = state.get("task") if isinstance(state, dict) else type(state).__name__
        raise InputError(path, f"training checkpoint is of '{found}', not '{task_name}'; delete it to start over")
    if state.get("recipe") != asdict(recipe):
        raise InputError(path, "training checkpoint was made with another recipe; delete it (or the folder) to "
                         "start over with this one")
    return state


def _autocast(device: torch.device, enabled: bool):
    import contextlib

    import torch

    if not enabled or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def train(task: TrainTask, recipe: Recipe, work_dir: Path, device: torch.device | None = None,
          stop_after: int | None = None, progress: bool = True) -> TrainResult:
    """Train (or resume training) `task` with `recipe`, checkpointing into `work_dir`.

    `stop_after` ends the run after that many steps as an interruption would (checkpoint written), so
    tests and short jobs can exercise resume.
    """
    import torch
    from tqdm import tqdm

    device = device or torch.device("cpu")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = work_dir / CHECKPOINT

    torch.manual_seed(recipe.seed)
    model = task.build_network().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    use_scaler = recipe.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    start, history, wall, cpu, resumed_from = 0, [], 0.0, 0.0, None
    losses: list[float] = []  # losses since the last history point (kept in the checkpoint)
    if checkpoint_path.is_file():
        state = _load_checkpoint(checkpoint_path, recipe, task.name)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = int(state["step"]), list(state["history"])
        wall, cpu, resumed_from = float(state["wall_seconds"]), float(state["cpu_seconds"]), start
        losses = [float(v) for v in state["pending_losses"]]
        log.info("%s: resuming from step %d of %d (%s)", task.name, start, recipe.steps, checkpoint_path)

    def save(step: int, elapsed_wall: float, elapsed_cpu: float) -> None:
        _save_atomically({"task": task.name, "recipe": asdict(recipe), "step": step, "model": model.state_dict(),
                          "optimizer": optimizer.state_dict(), "history": history, "pending_losses": losses,
                          "wall_seconds": elapsed_wall, "cpu_seconds": elapsed_cpu}, checkpoint_path)

    end = recipe.steps if stop_after is None else min(recipe.steps, start + stop_after)
    started_wall, started_cpu, last_save = time.perf_counter(), time.process_time(), time.perf_counter()
    bar = tqdm(total=recipe.steps, initial=start, desc=f"train {task.name}", unit="step", disable=not progress)
    model.train()
    for step in range(start, end):
        rng = np.random.default_rng([recipe.seed, step])
        torch.manual_seed(_step_seed(recipe.seed, step))
        inputs, targets = task.batch(step, recipe.batch_size, rng)
        inputs, targets = inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        for group in optimizer.param_groups:
            group["lr"] = recipe.learning_rate(step)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, recipe.amp):
            outputs = model(inputs)
        loss = task.loss(outputs.float(), targets)
        if not torch.isfinite(loss):
            raise RuntimeError(f"{task.name}: loss is {loss.item()} at step {step}; lower training.lr")
        scaler.scale(loss).backward()
        if recipe.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        losses.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}", lr=f"{recipe.learning_rate(step):.2e}")
        done = step + 1
        if (recipe.eval_every and done % recipe.eval_every == 0) or done == recipe.steps:
            model.eval()
            with torch.inference_mode():
                figures = task.evaluate(model, device)
            model.train()
            history.append({"step": done, "loss": float(np.mean(losses)) if losses else float("nan"),
                            "lr": recipe.learning_rate(step), **figures})
            log.info("%s: step %d loss %.4f %s", task.name, done, history[-1]["loss"],
                     " ".join(f"{k} {v:.4f}" for k, v in figures.items()))
            losses = []
        now = time.perf_counter()
        if done % recipe.checkpoint_every == 0 or now - last_save > recipe.checkpoint_seconds or done == end:
            save(done, wall + now - started_wall, cpu + time.process_time() - started_cpu)
            last_save = now
    bar.close()
    model.eval()
    return TrainResult(model=model.cpu(), history=history, steps=end,
                       wall_seconds=wall + time.perf_counter() - started_wall,
                       cpu_seconds=cpu + time.process_time() - started_cpu, resumed_from=resumed_from,
                       device=str(device))
