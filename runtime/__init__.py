"""biotag.runtime: data model, readers/writers, evaluation, inference and the `biotag` CLI.

This package must never import torch or transformers (a test checks it).
"""
from .document import Document, Entity, Segment

__all__ = ["Document", "Entity", "Segment"]
__version__ = "0.1.0"
