"""The catalogue of algorithm plug-ins: the only place algorithm names are listed.

Each line maps a name to ``"module:Class"``; the module is imported on first use, so the services load
only the algorithm a job runs. Adding an algorithm is one plug-in module plus one line here.

What it reveals to whom: nothing.
"""

from __future__ import annotations

import importlib
from functools import cache

from algorithms.api import Algorithm, nearest

_PLUGINS: dict[str, str] = {
    "vertical_lr": "algorithms.vertical_lr.plugin:VerticalLR",
    "secureboost": "algorithms.secureboost.plugin:SecureBoost",
    "fedavg": "algorithms.horizontal.fedavg:FedAvgPlugin",
    "fedprox": "algorithms.horizontal.fedprox:FedProxPlugin",
    "scaffold": "algorithms.horizontal.scaffold:ScaffoldPlugin",
    "fedadam": "algorithms.horizontal.fedadam:FedAdamPlugin",
    "fedyogi": "algorithms.horizontal.fedyogi:FedYogiPlugin",
    "fednova": "algorithms.horizontal.fednova:FedNovaPlugin",
}


class UnknownAlgorithm(ValueError):
    """The name is not in the catalogue."""


def names() -> tuple[str, ...]:
    """Every catalogued algorithm name, sorted (the CLI's choices)."""
    return tuple(sorted(_PLUGINS))


def default_name() -> str:
    """The algorithm the demo and the example job use when none is named (the catalogue's first line)."""
    return next(iter(_PLUGINS))


@cache
def get(name: str) -> Algorithm:
    """The plug-in called ``name``; :class:`UnknownAlgorithm` names the known ones otherwise."""
    if name not in _PLUGINS:
        raise UnknownAlgorithm(f"unknown algorithm {name!r}{nearest(name, _PLUGINS)}; known: {', '.join(names())}")
    module, cls = _PLUGINS[name].split(":")
    plugin = getattr(importlib.import_module(module), cls)()
    if plugin.name != name:
        raise UnknownAlgorithm(f"catalogue entry {name!r} points at a plug-in named {plugin.name!r}")
    return plugin


def silo_roles() -> dict[str, bool]:
    """Every silo role any catalogued algorithm has, and whether it holds labels (silo configs are checked
    against these; the job then checks the role against its own algorithm)."""
    out: dict[str, bool] = {}
    for name in names():
        for spec in get(name).roles:
            out[spec.name] = out.get(spec.name, False) or spec.holds_labels
    return out


__all__ = ["UnknownAlgorithm", "default_name", "get", "names", "silo_roles"]
