"""lrcal: onboard new multimodal models into a learned LatentRouter."""

__version__ = "0.1.0"
