"""The stage table: what it derives (CLI, upstream roles, report order, registries) and the GPU test."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import torch

from stg.cli import build_parser
from stg.config import STAGE_UPSTREAM
from stg.report import STAGE_ORDER
from stg.settings import stage_names, stage_schema
from stg.stages import DATASET, STAGES, runtime_settings, stage_uses_gpu

NOT_STAGES = {"synth", "proposals-report", "metrics", "results", "weights", "train-segmenter", "train-graph",
              "online-learn", "compare"}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def test_cli_commands_are_the_table_plus_the_non_stage_commands():
    assert set(_subparsers(build_parser())) == set(STAGES) | NOT_STAGES


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_command_arguments_come_from_its_row(name):
    stage = STAGES[name]
    flags = _flags(_subparsers(build_parser())[name])
    for role in stage.store_roles:
        assert flags[f"--{role}"].required == (role not in stage.either_roles)
    assert ("--dataset-root" in flags) == stage.reads_video
    assert ("--device" in flags) == ("--batch-size" in flags) == stage.takes_device()
    for option in stage.options:
        assert option.flag in flags
    assert {"--settings", "--key", "--out"} <= set(flags)


def test_derived_tables():
    assert {name: list(stage.upstream) for name, stage in STAGES.items()} == STAGE_UPSTREAM
    assert STAGE_UPSTREAM["flow"] == [DATASET] and STAGE_UPSTREAM["graph"] == ["segment", "warp", "flow"]
    assert ("synth", *STAGES, "results") == STAGE_ORDER
    assert all(role == DATASET or role in STAGES for stage in STAGES.values() for role in stage.upstream)


def test_every_stage_has_a_schema_section_and_its_registry_matches_the_schema():
    assert set(STAGES) == set(stage_names())
    for name, stage in STAGES.items():
        properties = stage_schema(name)["properties"]
        if stage.backends:
            assert list(stage.registry()) == properties["backend"]["enum"], name
            assert all(backend in properties for backend in stage.registry()), name
        else:
            assert "backend" not in properties, name


@pytest.mark.parametrize(("stage", "settings"), [
    ("flow", {"backend": "raft"}),
    ("detect", {"backend": "torchvision"}),
    ("detect", {"backend": "mmdet"}),
    ("segment", {"backend": "deeplab"}),
    ("segment", {}),  # the default: deeplab
    ("graph", {}),
    ("graph", {"backend": "resnet", "temporal": False}),
    ("graph", {"temporal": False, "spatial": False}),  # no features CNN, but online proposals run the segmenter
])
def test_torch_backends_use_a_gpu_as_the_device_says(stage, settings):
    assert stage_uses_gpu(stage, settings, "cuda")
    assert stage_uses_gpu(stage, settings, "cuda:1")  # declared even without CUDA here: the job will need one
    assert not stage_uses_gpu(stage, settings, "cpu")
    assert stage_uses_gpu(stage, settings, "auto") == torch.cuda.is_available()


@pytest.mark.parametrize(("stage", "settings"), [
    ("flow", {}),  # dis
    ("detect", {"backend": "motion"}),
    ("segment", {"backend": "grabcut"}),  # named: the default is deeplab (torch)
    ("graph", {"temporal": False, "spatial": False, "proposals": "cached"}),  # no features CNN, no segmenter
    ("graph", {"temporal": False, "spatial_iterations": 0, "proposals": "cached"}),
    ("warp", {}),
    ("propagate", {}),
])
@pytest.mark.parametrize("device", ["cpu", "cuda", "auto"])
def test_stages_without_torch_never_hold_a_gpu(stage, settings, device):
    assert not stage_uses_gpu(stage, settings, device)


@pytest.mark.parametrize("settings", [{"backend": "yolox"}, {"backend": "union"},  # default union: yolox + motion
                                      {"backend": "union", "union": {"backends": ["motion", "yolox"]}}])
def test_onnx_runtime_backends_use_a_gpu_only_with_its_cuda_provider(settings, monkeypatch):
    import onnxruntime

    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    for device in ("cuda", "cuda:1", "auto", "cpu"):
        assert not stage_uses_gpu("detect", settings, device)  # torch's CUDA does not matter
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert stage_uses_gpu("detect", settings, "cuda") and stage_uses_gpu("detect", settings, "cuda:1")
    assert not stage_uses_gpu("detect", settings, "cpu")
    assert stage_uses_gpu("detect", settings, "auto") == torch.cuda.is_available()


def test_a_union_holds_a_gpu_when_a_member_does():
    torch_member = {"backend": "union", "union": {"backends": ["motion", "torchvision"]}}
    assert stage_uses_gpu("detect", torch_member, "cuda") and not stage_uses_gpu("detect", torch_member, "cpu")
    assert stage_uses_gpu("detect", torch_member, "auto") == torch.cuda.is_available()


def test_gpu_test_of_a_cpu_backend_does_not_import_torch():
    code = ("import sys; from stg.stages import stage_uses_gpu; "
            "assert not stage_uses_gpu('flow', {'backend': 'dis'}, 'auto'); "
            "assert not stage_uses_gpu('graph', {'temporal': False, 'spatial': False, 'proposals': 'cached'}, 'auto'); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gpu_test_rejects_bad_input():
    from stg.errors import InputError

    with pytest.raises(InputError, match="stages.flow.device"):
        stage_uses_gpu("flow", {"backend": "raft"}, "gpu")
    with pytest.raises(InputError, match="stages.flow.backend"):
        stage_uses_gpu("flow", {"backend": "flownet"}, "cpu")
    with pytest.raises(ValueError, match="unknown stage"):
        stage_uses_gpu("train", {}, "cpu")


def test_runtime_settings_apply_device_and_batch_size_to_the_chosen_backend():
    settings = {"backend": "deeplab", "device": "auto", "deeplab": {"batch_size": 8}, "grabcut": {"iterations": 3}}
    runtime = runtime_settings("segment", settings, "cpu", 2)
    assert runtime["device"] == "cpu" and runtime["deeplab"]["batch_size"] == 2
    assert settings["deeplab"]["batch_size"] == 8  # not mutated
    grabcut = runtime_settings("segment", {**settings, "backend": "grabcut"}, None, 2)
    assert grabcut["device"] == "auto" and "batch_size" not in grabcut["grabcut"]  # grabcut takes none
    assert runtime_settings("segment", settings, None, 0) == settings
