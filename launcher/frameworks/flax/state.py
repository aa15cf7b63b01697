"""Model and checkpoint state as named arrays in msgpack files: Flax's own serialization, no pickle.

A pytree (NNX parameters, batch statistics, an Optax state) is written as a flat mapping from
its leaves' paths ("body/0/linear/kernel") to NumPy arrays with `flax.serialization`'s msgpack
encoder, which stores arrays as dtype, shape and raw bytes. Reading decodes plain msgpack
(no code runs) and restores into a *target* tree built the usual way from the spec and the
settings: every path must be there with the same shape and dtype, and no other, so a file of
another network, a truncated file or a tampered one is refused instead of half-loaded.

Imports jax and flax at the top; the adapter imports it inside its methods.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import jax
import numpy as np
from flax import serialization

from launcher.io import atomic_path, write_verified


class StateError(ValueError):
    """The file is not msgpack, or its arrays do not fit the target tree."""


def path_name(path: tuple) -> str:
    name = jax.tree_util.keystr(path, simple=True, separator="/")
    return name[: -len("/value")] if name.endswith("/value") else name  # nnx.Variable's own level


def to_arrays(tree: Any) -> dict[str, np.ndarray]:
    """{path: array} of a pytree's leaves, copied to the host."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {path_name(path): np.array(leaf) for path, leaf in leaves}


def from_arrays(target: Any, arrays: Any, what: str) -> Any:
    """`target` with its leaves replaced by `arrays` (as to_arrays wrote them); raises StateError
    unless the names, shapes and dtypes match exactly."""
    if not isinstance(arrays, Mapping):
        raise StateError(f"{what}: expected a mapping of named arrays, found {type(arrays).__name__}")
    leaves, treedef = jax.tree_util.tree_flatten_with_path(target)
    names = [path_name(path) for path, _ in leaves]
    missing = [n for n in names if n not in arrays]
    extra = sorted(set(arrays) - set(names))
    if missing or extra:
        raise StateError(f"{what}: {'missing ' + ', '.join(missing[:3]) if missing else ''}"
                         f"{'; ' if missing and extra else ''}{'unexpected ' + ', '.join(extra[:3]) if extra else ''}")
    out = []
    for name, (_, leaf) in zip(names, leaves):
        value = arrays[name]
        if not isinstance(value, np.ndarray):
            value = np.asarray(value) if isinstance(value, (int, float, np.generic)) else value
        # leaf: an array, or a jax.ShapeDtypeStruct of a network built with shapes only
        if not isinstance(value, np.ndarray) or value.shape != tuple(leaf.shape) or value.dtype != leaf.dtype:
            got = f"{value.dtype}{list(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__
            raise StateError(f"{what}: {name} is {got}, expected {leaf.dtype}{list(leaf.shape)}")
        out.append(value)
    return jax.tree_util.tree_unflatten(treedef, out)


def write(path: Path, content: dict[str, Any], verified: bool = False) -> None:
    """Atomically: the previous file stays whole until the new one is complete. `verified`
    (checkpoints): its sha256 is recorded beside it, for io.verify before it is read."""
    data = serialization.msgpack_serialize(content)
    if verified:
        write_verified(Path(path), lambda tmp: Path(tmp).write_bytes(data))
        return
    with atomic_path(Path(path)) as tmp:
        Path(tmp).write_bytes(data)


def read(path: Path) -> dict[str, Any]:
    """The mapping a file holds; StateError if it is not a msgpack mapping."""
    try:
        content = serialization.msgpack_restore(Path(path).read_bytes())
    except Exception as exc:  # msgpack raises several types for malformed input
        raise StateError(f"not a msgpack state file ({type(exc).__name__}: {exc})") from None
    if not isinstance(content, dict):
        raise StateError(f"not a state file: it holds a {type(content).__name__}, not a mapping")
    return content
