"""Accelerate launch configs (params/accelerate/) and the exact `accelerate launch ...` command for a run.

The command is built, not hidden: `gdo-repro train --print-launch` prints it, and the same list is what
`gdo-repro train` runs. The family decides the FSDP wrap classes (`--fsdp_transformer_layer_cls_to_wrap`),
params `train.launch` decide the nodes, node rank and master address; a DeepSpeed config file named
relative to the YAML is passed as an absolute path.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..config import LaunchConfig
from .families import Family

WORKER_MODULE = "gdo_utils.train.worker"


class LaunchError(ValueError):
    """A launch config that cannot run here (unknown name, more processes than devices, ...)."""


@dataclass(frozen=True)
class AccelerateConfig:
    """A parsed accelerate YAML with the fields the kit needs."""

    path: Path
    raw: dict[str, Any]

    @property
    def num_processes(self) -> int:
        return int(self.raw.get("num_processes", 1))

    @property
    def num_machines(self) -> int:
        return int(self.raw.get("num_machines", 1))

    @property
    def distributed_type(self) -> str:
        return str(self.raw.get("distributed_type", "NO"))

    @property
    def fsdp(self) -> dict:
        return self.raw.get("fsdp_config") or {} if self.distributed_type == "FSDP" else {}

    @property
    def deepspeed(self) -> dict:
        return self.raw.get("deepspeed_config") or {} if self.distributed_type == "DEEPSPEED" else {}

    @property
    def needs_gpu(self) -> bool:
        """FSDP and DeepSpeed configs are GPU configs (the CPU configs use NO / the torchrun launcher)."""
        return self.distributed_type in ("FSDP", "DEEPSPEED")


def resolve_config_path(launch: LaunchConfig, root: Path | None = None) -> Path:
    """A name in `launch.configs_dir` (with or without .yaml) or a path to a YAML file."""
    name = launch.config
    cand = [Path(name)] if name.endswith((".yaml", ".yml")) else []
    base = Path(launch.configs_dir)
    if not base.is_absolute() and root is not None:
        base = root / base
    cand += [base / f"{name}.yaml", base / name]
    for c in cand:
        if c.is_file():
            return c.resolve()
    have = sorted(p.stem for p in base.glob("*.yaml")) if base.is_dir() else []
    raise LaunchError(f"train.launch.config {name!r}: no such accelerate config in {base} (have: {', '.join(have)})")


def load_accelerate_config(path: str | Path) -> AccelerateConfig:
    """Parse with accelerate's own loader (unknown keys are its errors), keep the raw mapping too."""
    from accelerate.commands.config.config_args import load_config_from_file

    p = Path(path)
    load_config_from_file(str(p))   # validates against accelerate's ClusterConfig
    raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    return AccelerateConfig(p, raw)


def global_batch(per_device: int, grad_accum: int, cfg: AccelerateConfig, nnodes: int) -> int:
    """per-device batch x accumulation x processes per node x nodes."""
    return per_device * grad_accum * processes_per_node(cfg) * nnodes


def processes_per_node(cfg: AccelerateConfig) -> int:
    return max(1, cfg.num_processes // max(1, cfg.num_machines))


def check_devices(cfg: AccelerateConfig, on_gpu: bool) -> None:
    """Refuse a config naming more processes per node than this node has devices (GPUs, or CPU cores)."""
    import torch

    per_node = processes_per_node(cfg)
    have = torch.cuda.device_count() if on_gpu else (os.cpu_count() or 1)
    kind = "GPUs" if on_gpu else "CPU cores"
    if cfg.needs_gpu and not on_gpu:
        raise LaunchError(f"{cfg.path.name} is a GPU config ({cfg.distributed_type}) but this run has no GPU "
                          f"(use train.launch.config=cpu_1proc or cpu_2proc)")
    if per_node > have:
        raise LaunchError(f"{cfg.path.name} starts {per_node} processes per node but this node has {have} {kind}")


def launch_command(cfg: AccelerateConfig, launch: LaunchConfig, family: Family, params_file: str, subset: str,
                   overrides: list[str] | None = None, python: str = "accelerate") -> list[str]:
    """The `accelerate launch ...` argv that runs the worker for one subset."""
    cmd = [python, "launch", "--config_file", str(cfg.path)]
    nnodes = launch.nnodes
    procs = processes_per_node(cfg) * nnodes
    cmd += ["--num_machines", str(nnodes), "--num_processes", str(procs), "--machine_rank", str(launch.node_rank)]
    if procs > 1:
        cmd += ["--main_process_ip", launch.master_addr, "--main_process_port", str(launch.master_port)]
    if cfg.fsdp:
        cmd += ["--fsdp_transformer_layer_cls_to_wrap", ",".join(family.layer_classes)]
    ds_file = cfg.deepspeed.get("deepspeed_config_file")
    if ds_file and not Path(ds_file).is_absolute():
        cmd += ["--deepspeed_config_file", str((cfg.path.parent / ds_file).resolve())]
    cmd += ["-m", WORKER_MODULE, "--params", params_file, "--subset", subset]
    for ov in overrides or []:
        cmd += ["--set", ov]
    return cmd


def format_command(cmd: list[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)
