"""biotag.runtime: data model, readers/writers, evaluation, inference and the `biotag` CLI.

This package must never import torch or transformers (a test checks it).
"""
import os as _os

# No telemetry: onnxruntime's own (device id in ~/.cache/Microsoft, DNS lookups of Microsoft's event
# host from its native library) is switched off before any onnxruntime import can start it.
_os.environ["ORT_DISABLE_TELEMETRY"] = "1"
from .document import Document, Entity, Segment

__all__ = ["Document", "Entity", "Segment"]
__version__ = "0.1.0"
