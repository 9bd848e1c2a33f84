"""graphium-ray: multi-task, multi-level molecular GNNs on Ray."""

__version__ = "0.1.0"
