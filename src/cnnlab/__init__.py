"""cnnlab: train, compare and explain CNN image classifiers."""

__version__ = "0.1.0"
