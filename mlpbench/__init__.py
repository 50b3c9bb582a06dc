"""mlpbench: measure how an MLP's design choices change training."""

__version__ = "0.1.0"
