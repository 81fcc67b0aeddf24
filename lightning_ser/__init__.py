"""lightning-ser: speech emotion recognition with triplet-loss emotion embeddings."""

__version__ = "0.1.0"
