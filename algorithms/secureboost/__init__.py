"""Vertical SecureBoost (Cheng et al. 2019) with packed Paillier (SecureBoost+, Chen et al. 2021).

Public API::

    from algorithms.secureboost import (VerticalSecureBoost, PlainSecureBoost, BoostParams,
        SecureBoostGuest, SecureBoostHost, SecureBoostGuestPredictor, SecureBoostHostPredictor,
        GuestModel, HostModel, PackingLayout, PackingOverflowError)

Roles are transport-free (``role.run(channel)``). No arbiter takes part: the guest holds its own key.
What each party sends, receives and learns: :mod:`.guest`, :mod:`.host`, :mod:`.prediction`.

Names are imported lazily, so worker processes that only need the histogram and packing kernels do
not import pandas, scikit-learn or the transport.

What it reveals: nothing by itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # static names for type checkers and IDEs
    from algorithms.secureboost.data import InputError
    from algorithms.secureboost.estimator import VerticalSecureBoost, federated_predict
    from algorithms.secureboost.guest import SecureBoostGuest
    from algorithms.secureboost.host import SecureBoostHost
    from algorithms.secureboost.model import GuestModel, HostModel, HostSplit, TreeNode
    from algorithms.secureboost.packing import PackingLayout, PackingOverflowError
    from algorithms.secureboost.params import BoostParams
    from algorithms.secureboost.plain import PlainSecureBoost
    from algorithms.secureboost.prediction import SecureBoostGuestPredictor, SecureBoostHostPredictor

_EXPORTS = {
    "BoostParams": "params",
    "GuestModel": "model",
    "HostModel": "model",
    "HostSplit": "model",
    "TreeNode": "model",
    "InputError": "data",
    "PackingLayout": "packing",
    "PackingOverflowError": "packing",
    "PlainSecureBoost": "plain",
    "SecureBoostGuest": "guest",
    "SecureBoostHost": "host",
    "SecureBoostGuestPredictor": "prediction",
    "SecureBoostHostPredictor": "prediction",
    "VerticalSecureBoost": "estimator",
    "federated_predict": "estimator",
}

__all__ = [
    "BoostParams",
    "GuestModel",
    "HostModel",
    "HostSplit",
    "InputError",
    "PackingLayout",
    "PackingOverflowError",
    "PlainSecureBoost",
    "SecureBoostGuest",
    "SecureBoostGuestPredictor",
    "SecureBoostHost",
    "SecureBoostHostPredictor",
    "TreeNode",
    "VerticalSecureBoost",
    "federated_predict",
]
assert set(__all__) == set(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'algorithms.secureboost' has no attribute {name!r}")
    return getattr(importlib.import_module(f"algorithms.secureboost.{module}"), name)
