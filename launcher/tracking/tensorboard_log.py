"""logger=tensorboard: TensorBoard event files in <run dir>/tensorboard/.

Written with TensorBoard's own protocol buffers and record framing, not through
tensorboard.summary (whose package import loads TensorFlow when it is installed: 4 s) nor
torch.utils.tensorboard (torch, for a scikit-learn run). `tensorboard --logdir outputs` reads
them: per-epoch scalars at step = epoch, the final metrics at the last epoch, and the composed
config as a text summary.
"""
from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path
from typing import IO, Any

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

from launcher.tracking.writer import Writer


class TensorBoardWriter(Writer):
    name = "tensorboard"
    defaults: dict[str, Any] = {}

    def __init__(self, settings: Any, out: Path) -> None:
        super().__init__(settings, out)
        self.file: IO[bytes] | None = None

    def start(self, params: dict[str, str], tags: dict[str, str]) -> None:
        folder = self.out / "tensorboard"
        folder.mkdir(parents=True, exist_ok=True)
        self.file = open(folder / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.0",
                         "wb")
        self._write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))
        table = "| name | value |\n|---|---|\n" + "\n".join(
            f"| {k} | {_cell(v)} |" for k, v in {**{f"tag.{k}": v for k, v in tags.items()}, **params}.items())
        self._write(event_pb2.Event(wall_time=time.time(), step=0, summary=summary_pb2.Summary(value=[_text("config",
                                                                                                            table)])))

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self._scalars(epoch, metrics)

    def final(self, metrics: dict[str, float], step: int) -> None:
        self._scalars(step, metrics)

    def finish(self, status: str) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def _scalars(self, step: int, metrics: dict[str, float]) -> None:
        values = [summary_pb2.Summary.Value(tag=k, simple_value=v) for k, v in metrics.items()]
        self._write(event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(value=values)))

    def _write(self, event: event_pb2.Event) -> None:
        """One TFRecord: length, its masked CRC-32C, the data, its masked CRC-32C; flushed, so
        a TensorBoard watching the run sees each epoch as it ends."""
        data = event.SerializeToString()
        header = struct.pack("<Q", len(data))
        assert self.file is not None
        self.file.write(header + struct.pack("<I", masked_crc32c(header)) + data
                        + struct.pack("<I", masked_crc32c(data)))
        self.file.flush()


def _text(tag: str, text: str) -> summary_pb2.Summary.Value:
    """A text summary (TensorBoard's Text tab renders it as markdown)."""
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[text.encode()],
                                    tensor_shape=tensor_shape_pb2.TensorShapeProto(
                                        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=1)]))
    meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text"))
    return summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)


def _cell(value: str) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
