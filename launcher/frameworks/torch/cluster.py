"""Where a PyTorch run's processes come from: Fabric's cluster environment, chosen here.

Fabric, left to choose, probes for SLURM on every run and warns ("The `srun` command is
available on your system but is not used") whenever `srun` is on PATH outside a job step: on a
login node, or any machine with slurm-client installed, every run would print it, and a bad
input would no longer be one line on stderr. So the environment is chosen here, in Fabric's
own order but without the probe's warning:

  torchrun (TorchElastic)   its variables name every rank
  a SLURM job step          SLURM_NTASKS and SLURM_PROCID, set by srun (submitit runs each
                            task through srun); one task per device, started by SLURM
  LSF, MPI                  as Fabric detects them
  otherwise                 LightningEnvironment: Fabric starts the extra processes itself by
                            re-running the command (MASTER_ADDR/MASTER_PORT/NODE_RANK, when
                            set, join several machines)

Requeueing a SLURM job is submitit's (it resubmits on preemption and timeout, and the job
resumes from its checkpoint), so Fabric's SLURM environment is made with auto_requeue off: one
owner for the signal.

The process count is checked before anything starts (`check_processes`): inside a SLURM
allocation the tasks must be the devices asked for, and inside a multirun Fabric must not
start processes by re-running the command, which would re-run the whole sweep once per extra
process.
"""
from __future__ import annotations

import os
from typing import Any

from launcher.core.errors import ConfigError

# SLURM job names under which Fabric itself does not treat the job as a SLURM launch: the
# user took an interactive allocation and starts processes some other way.
INTERACTIVE_JOB_NAMES = ("bash", "interactive")


def in_slurm_step() -> bool:
    """Inside a SLURM job step (started by srun or sbatch), not an interactive allocation."""
    return "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") not in INTERACTIVE_JOB_NAMES


def _torchelastic() -> bool:
    import torch.distributed

    return torch.distributed.is_available() and torch.distributed.is_torchelastic_launched()


def environment() -> Any:
    """The Fabric ClusterEnvironment for this process (see the module's docstring)."""
    from lightning_fabric.plugins.environments import (LightningEnvironment, LSFEnvironment, MPIEnvironment,
                                                       SLURMEnvironment, TorchElasticEnvironment)

    if _torchelastic():
        return TorchElasticEnvironment()
    if in_slurm_step():
        return SLURMEnvironment(auto_requeue=False)
    for kind in (LSFEnvironment, MPIEnvironment):
        if kind.detect():
            return kind()
    return LightningEnvironment()


def processes(devices: Any, num_nodes: int) -> int:
    """How many training processes a placement asks for: one per device, on every node."""
    per_node = len(devices) if isinstance(devices, list) else int(devices)
    return per_node * num_nodes


def check_processes(devices: Any, num_nodes: int, multirun: bool) -> None:
    """Refuse, before anything starts, a process layout that cannot work here."""
    wanted = processes(devices, num_nodes)
    if in_slurm_step():
        tasks = int(os.environ["SLURM_NTASKS"])
        if tasks != wanted:
            raise ConfigError(
                f"this SLURM job has {tasks} task(s) but device.devices={devices} x device.num_nodes={num_nodes} "
                f"asks for {wanted} process(es): SLURM starts one process per task, so submit with "
                f"--nodes={num_nodes} --ntasks-per-node={wanted // max(num_nodes, 1)} (hydra/launcher=slurm "
                "sets both from device.devices and device.num_nodes)")
        return
    if multirun and wanted > 1 and "LOCAL_RANK" not in os.environ and not _torchelastic():
        raise ConfigError(_in_multirun_message(devices, num_nodes))


def check_sweep(config: Any) -> None:
    """For a multirun's driver, before its first job (launcher.callbacks): a data-parallel
    PyTorch grid or sweep runs only as SLURM jobs; anywhere else each job would refuse."""
    if (config.get("framework") or {}).get("name") != "pytorch":
        return
    device = config.get("device") or {}
    devices, num_nodes = device.get("devices", 1), device.get("num_nodes", 1)
    devices = 1 if devices in (None, "auto") else list(devices) if hasattr(devices, "__len__") \
        and not isinstance(devices, str) else devices
    try:
        wanted = processes(devices, int(num_nodes))
    except (TypeError, ValueError):
        return  # the job itself says what is wrong with the value
    launcher = str(config.hydra.launcher.get("_target_", ""))
    if wanted > 1 and not launcher.endswith(".SlurmLauncher"):
        raise ConfigError(_in_multirun_message(devices, num_nodes))


def _in_multirun_message(devices: Any, num_nodes: int) -> str:
    return (f"device.devices={devices} (device.num_nodes={num_nodes}) inside a multirun (-m) cannot start: Fabric "
            "starts each extra process by re-running the command line, which would start the whole sweep again "
            "once per process. Run a data-parallel grid or sweep with hydra/launcher=slurm (SLURM starts one "
            "task per device), or run each data-parallel job on its own, without -m")
