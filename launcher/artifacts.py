"""Safe model artifacts: atomic writes, metadata, checksums verified on load.

A model directory holds what the framework adapter wrote (skops, safetensors, .keras, ...),
`preprocessing.json` (the fitted feature pipeline and target encoding) and `metadata.json`
(framework, library versions, resolved config, feature schema, metrics, git commit and a
sha256 of every other file). It is written to a temporary sibling and renamed into place only
when complete, so an interrupted run never leaves a directory that looks like a model.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import zipfile
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from launcher.core.adapter import Adapter
from launcher.core.errors import ArtifactError
from launcher.io import atomic_dir, sha256, write_json

METADATA = "metadata.json"
FORMAT_VERSION = 1


def versions(*packages: str) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("launcher", "numpy", "pandas", *packages):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


# What a SLURM job records of itself (metadata.json and metrics.json "slurm"): from the variables
# SLURM sets in every job, so a result can be traced to its job, node and allocation.
SLURM_FIELDS = {"job_id": "SLURM_JOB_ID", "array_job_id": "SLURM_ARRAY_JOB_ID", "array_task_id": "SLURM_ARRAY_TASK_ID",
                "restart_count": "SLURM_RESTART_COUNT", "partition": "SLURM_JOB_PARTITION", "node": "SLURMD_NODENAME",
                "nodes": "SLURM_JOB_NODELIST", "num_nodes": "SLURM_JOB_NUM_NODES", "tasks": "SLURM_NTASKS",
                "tasks_per_node": "SLURM_TASKS_PER_NODE", "cpus_on_node": "SLURM_CPUS_ON_NODE",
                "mem_per_node_mb": "SLURM_MEM_PER_NODE", "gpus_on_node": "SLURM_GPUS_ON_NODE"}


def slurm_job() -> dict[str, str] | None:
    """The SLURM job this process runs in; None outside one."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    return {key: os.environ[var] for key, var in SLURM_FIELDS.items() if var in os.environ}


def git_commit(directory: Path) -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def save_model(adapter: Adapter, model, directory: Path, files: dict[str, Any] | None = None,
               metadata: dict[str, Any] | None = None) -> Path:
    """Save `model` through its adapter into `directory`, atomically, with metadata.

    `files` are extra JSON documents saved beside the model (e.g. preprocessing.json);
    `metadata` is merged into metadata.json."""
    job = slurm_job()
    return _save_directory(directory, lambda tmp: adapter.save(model, tmp), files, {
        "framework": adapter.name, "versions": versions(*adapter.packages), **(metadata or {}),
        **({"slurm": job} if job else {})})


ENSEMBLE = "ensemble.json"


ENV_INTERPOLATION = re.compile(r"(?<!\\)\$\{(oc\.env|env):")


def recorded_config(cfg: Any) -> dict[str, Any]:
    """The composed config as a model's metadata records it: resolved, except that an
    environment variable's interpolation stays as written (`${oc.env:API_KEY}`), so no secret
    lands in metadata.json, or in a tracker that uploads it."""
    from omegaconf import OmegaConf

    def keep_env(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: keep_env(v) for k, v in node.items()}
        if isinstance(node, list):
            return [keep_env(v) for v in node]
        if isinstance(node, str) and ENV_INTERPOLATION.search(node):
            # Read back as the text itself; an already escaped `\${` (user text the robot
            # wrote literally) stays as it is.
            return re.sub(r"(?<!\\)\$\{", lambda m: "\\${", node)
        return node

    raw = OmegaConf.to_container(cfg, resolve=False)
    try:
        return OmegaConf.to_container(OmegaConf.create(keep_env(raw)), resolve=True)
    except Exception:  # an interpolation that resolves only inside its own run: keep it as written
        return raw


def save_ensemble(members: list[tuple[Path, float]], directory: Path, metadata: dict[str, Any]) -> Path:
    """An ensemble model directory: each member's model directory copied under members/<i>/,
    ensemble.json (the weights), and a metadata.json whose checksums cover every file."""
    for member, _ in members:
        read_metadata(member)  # a member must itself be complete and intact

    def write(tmp: Path) -> None:
        for i, (member, _) in enumerate(members):
            shutil.copytree(member, tmp / "members" / str(i))

    entries = [{"dir": f"members/{i}", "weight": float(w)} for i, (_, w) in enumerate(members)]
    return _save_directory(directory, write, {ENSEMBLE: {"format": "launcher-ensemble/1", "members": entries}},
                           {"framework": "ensemble", "versions": versions(), **metadata})


def _save_directory(directory: Path, write: Any, files: dict[str, Any] | None, metadata: dict[str, Any]) -> Path:
    """Write a model directory beside its place and rename it in whole (launcher.io.atomic_dir):
    a model is complete or absent, and what a killed save left is removed by the next one."""
    directory = Path(directory)
    with atomic_dir(directory) as tmp:
        write(tmp)
        for name, content in (files or {}).items():
            write_json(tmp / name, content)
        files = {p.relative_to(tmp).as_posix(): sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        meta = {
            "format_version": FORMAT_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **metadata,
            "checksums": files,
        }
        write_json(tmp / METADATA, meta)
    return directory


def read_metadata(directory: Path) -> dict[str, Any]:
    """Metadata of a model directory, after verifying every checksum it lists."""
    directory = Path(directory)
    meta_path = directory / METADATA
    if not meta_path.is_file():
        raise ArtifactError(f"{directory} holds no saved model ({METADATA} is missing); "
                            "point at a completed run directory or its model/ folder")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{meta_path} is corrupted ({exc}); re-run the training") from None
    checksums = meta.get("checksums")
    if not isinstance(checksums, dict) or not checksums:
        raise ArtifactError(f"{meta_path} lists no checksums; the artifact cannot be verified")
    root = directory.resolve()
    for name, digest in checksums.items():
        path = (directory / name).resolve()
        if root not in path.parents:  # a path in the metadata must stay inside the model dir
            raise ArtifactError(f"{meta_path} names a file outside the model directory: {name!r}")
        if not path.is_file():
            raise ArtifactError(f"model file {name} is missing from {directory}; the artifact is incomplete")
        if sha256(path) != digest:
            raise ArtifactError(f"model file {name} in {directory} does not match its checksum: "
                                "it was modified or corrupted; re-run the training")
    return meta


def model_dir(run: Path) -> Path:
    """Accept a run directory or its model/ folder."""
    run = Path(run)
    return run if (run / METADATA).is_file() else run / "model"


def load_model(directory: Path, adapter: Adapter):
    """(model, metadata) from a verified model directory, loaded by `adapter`."""
    directory = model_dir(directory)
    meta = read_metadata(directory)
    if meta.get("framework") != adapter.name:
        raise ArtifactError(f"{directory} holds a {meta.get('framework')} model, not a {adapter.name} one")
    try:
        return adapter.load(directory), meta
    except _UNREADABLE as exc:
        # The checksums matched, so the files are the ones metadata.json lists: one of them was
        # replaced together with its checksum (or written by another tool), not damaged on the way.
        raise ArtifactError(f"the model in {directory} cannot be read as a {adapter.name} model "
                            f"({type(exc).__name__}: {exc}); its files were replaced after training; "
                            "re-run the training to get a model") from exc


# What the model formats raise on a file that is not theirs: a zip that is not one (skops,
# .keras), undecodable JSON or msgpack (ValueError), a missing entry (KeyError), a short read.
# (An OSError is not one of them: the checksum pass has read every file already.)
_UNREADABLE = (zipfile.BadZipFile, ValueError, KeyError, EOFError)
