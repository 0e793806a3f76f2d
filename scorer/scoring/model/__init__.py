"""The model: the Classifier protocol, its runtimes, the artifact builder, the
background loader, and the factory that picks a runtime.

Adding a runtime touches only this package: write it beside ``onnx_runtime.py``
and let :func:`load_classifier` choose it. Runtimes are imported lazily: the web
process must not pay for torch when it serves the ONNX artifact.
"""

from scorer.scoring.model.base import MAX_TOKENS, Classifier, check_labels
from scorer.scoring.model.factory import ArtifactMismatch, load_classifier
from scorer.scoring.model.loader import ModelLoader

__all__ = [
    "MAX_TOKENS",
    "ArtifactMismatch",
    "Classifier",
    "ModelLoader",
    "check_labels",
    "load_classifier",
]
