"""TensorFlow's process-wide state, in one place: importing it quietly, the devices it may use,
GPU memory, its thread pools and op determinism.

TensorFlow fixes most of these when it starts (its first operation); afterwards they cannot
change in the same process. `configure` applies what a run asks for while it still can and
remembers what it applied; a later run in the same process (Hydra's basic launcher runs every
job of a multirun in one process; so does a Python session using the API) that asks for
something TensorFlow can no longer change gets a ConfigError saying so, never a silent no-op.

Importing this module imports nothing heavy; `import_tensorflow()` does.
"""
from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator

from launcher.core.errors import ConfigError

log = logging.getLogger("launcher")

# What this process has applied: (what, value) pairs that TensorFlow no longer lets us change.
_applied: dict[str, Any] = {}


def quiet() -> bool:
    """TensorFlow's log is silenced unless the user asked for it: TF_CPP_MIN_LOG_LEVEL=0 in the
    environment, or launcher's own log at DEBUG (hydra.verbose=launcher). Decided once, at the
    import. (Any other TF_CPP_MIN_LOG_LEVEL is no such request: TensorFlow itself sets 1 when
    imported, and child processes inherit it.)"""
    if "quiet" not in _applied:
        _applied["quiet"] = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() != "0" \
            and not log.isEnabledFor(logging.DEBUG)
    return _applied["quiet"]


def import_tensorflow() -> tuple[Any, Any]:
    """(tensorflow, keras), Keras 3 on the TensorFlow backend."""
    if "tensorflow" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"
        # GPUs take memory as they need it (a cap, framework.memory_limit_mb, is set per run).
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
        if quiet():
            # C++ INFO and WARNING off (a user's 3, errors off too, is kept); errors still show.
            level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "")
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3" if level == "3" else "2"
            # TensorFlow's C++ libraries log a few lines (oneDNN, absl) while loading, before
            # TF_CPP_MIN_LOG_LEVEL takes effect; the only way to keep them off the console
            # is to point the process's stderr elsewhere for the import.
            with _stderr_to_devnull():
                import tensorflow  # noqa: F401
                import keras  # noqa: F401
    elif "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise ConfigError(f"Keras was already imported in this process with the {keras.backend.backend()} "
                          "backend (KERAS_BACKEND); framework=tensorflow needs Keras on TensorFlow: run it in "
                          "its own process")
    if quiet():
        tf.get_logger().setLevel(logging.ERROR)  # e.g. tf.function retracing notices
    return tf, keras


@contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def gpus() -> list[Any]:
    """The GPUs TensorFlow may use in this process (after any hiding)."""
    tf, _ = import_tensorflow()
    return tf.config.get_visible_devices("GPU")


def configure(accelerator: str, *, memory_limit_mb: int | None, threads: int | None,
              deterministic: bool) -> str:
    """Apply a run's device, GPU memory, thread and determinism settings; return the device the
    run uses ("cpu" or "gpu:0"). `accelerator` is "cpu" (GPUs hidden), "gpu" (one must be
    there) or "auto"."""
    tf, _ = import_tensorflow()
    physical = tf.config.list_physical_devices("GPU")
    if accelerator == "cpu":
        if physical and tf.config.get_visible_devices("GPU"):
            try:
                tf.config.set_visible_devices([], "GPU")
            except RuntimeError:
                # TensorFlow already started with the GPUs visible: the run is placed on the
                # CPU instead (`scope`), which is all device=cpu promises.
                log.info("tensorflow: GPUs were already in use in this process; running on the CPU")
        device = "cpu"
    else:
        visible = tf.config.get_visible_devices("GPU")
        if not visible:
            if accelerator == "gpu":
                why = ("an earlier run in this process hid them (device=cpu or framework.gpu_support=false), "
                       "and TensorFlow cannot show them again: run it in its own process"
                       if physical else "use device=cpu or device=auto, or install a CUDA build of TensorFlow "
                       "(pip install tensorflow[and-cuda]) on a machine with a GPU")
                raise ConfigError(f"device=gpu asks for a GPU, but TensorFlow {tf.__version__} sees none: {why}")
            device = "cpu"
        else:
            _gpu_memory(tf, visible, memory_limit_mb)
            device = "gpu:0"
    _threads(tf, threads)
    if deterministic and not _applied.get("deterministic"):
        # Process-wide, and TensorFlow has no public switch back: a later run with
        # trainer.deterministic=false in the same process stays deterministic (never less).
        tf.config.experimental.enable_op_determinism()
        _applied["deterministic"] = True
    return device


def _gpu_memory(tf: Any, visible: list[Any], memory_limit_mb: int | None) -> None:
    wanted = ("limit", int(memory_limit_mb)) if memory_limit_mb else ("growth", None)
    if _applied.get("memory") == wanted:
        return
    if "memory" in _applied:
        raise ConfigError(f"framework.memory_limit_mb={memory_limit_mb}: an earlier run in this process set the GPU "
                          f"memory to {_describe(_applied['memory'])}, and TensorFlow cannot change it once started; "
                          "run it in its own process")
    try:
        for gpu in visible:
            if memory_limit_mb:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(memory_limit_mb))])
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        if memory_limit_mb:
            raise ConfigError(f"framework.memory_limit_mb={memory_limit_mb} cannot be applied: TensorFlow already "
                              "started in this process (something used it before this run); run it in its own "
                              "process") from None
        log.warning("tensorflow: started before launcher could turn on GPU memory growth; it may hold most of the "
                    "GPU's memory (TF_FORCE_GPU_ALLOW_GROWTH=true before the first import prevents that)")
        return
    _applied["memory"] = wanted


def _describe(memory: tuple[str, Any]) -> str:
    return f"a cap of {memory[1]} MB" if memory[0] == "limit" else "grow as needed (no cap)"


def _threads(tf: Any, threads: int | None) -> None:
    if threads is None:
        return
    if tf.config.threading.get_intra_op_parallelism_threads() == threads \
            and tf.config.threading.get_inter_op_parallelism_threads() == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    except RuntimeError:
        now = tf.config.threading.get_intra_op_parallelism_threads()
        raise ConfigError(
            f"trainer.num_threads={threads} cannot be applied: TensorFlow already runs in this process with "
            f"{now or 'its default number of'} threads, fixed when it started; use trainer.num_threads="
            f"{now or 'null'}, or run in a new process (TensorFlow sets its thread pools once)") from None


def threads() -> int:
    """The intra-op threads TensorFlow uses (its default: one per core)."""
    tf, _ = import_tensorflow()
    return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count() or 1


@contextmanager
def scope(device: str) -> Iterator[None]:
    """Place what runs inside on `device` ("cpu" or "gpu:0")."""
    tf, _ = import_tensorflow()
    with tf.device("/CPU:0" if device == "cpu" else "/GPU:0"):
        yield
