"""Message-passing layers by config name (``model.layer``).

Adding a layer: one file in ``graphium_ray/nn/`` with a :class:`~graphium_ray.nn.layers.MessagePassingLayer`
subclass, and one line here. Config validation, the network and the tests read this table. It
names classes as ``module:Class`` strings so that validating a config imports no torch.
"""

from __future__ import annotations

import importlib

LAYERS: dict[str, str] = {
    "gcn": "graphium_ray.nn.gcn:GCNLayer",
    "gin": "graphium_ray.nn.gin:GINLayer",
    "gine": "graphium_ray.nn.gine:GINELayer",
    "gated_gcn": "graphium_ray.nn.gated_gcn:GatedGCNLayer",
    "mpnn": "graphium_ray.nn.mpnn:MPNNPlusLayer",
    "dmpnn": "graphium_ray.nn.dmpnn:DMPNNLayer",
    "gps": "graphium_ray.nn.gps:GPSLayer",
}


def layer_class(name: str) -> type:
    """The layer class registered as ``name``."""
    if name not in LAYERS:
        raise ValueError(f"unknown layer {name!r}; choose one of {sorted(LAYERS)}")
    module, _, cls = LAYERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)
