"""Vertical SecureBoost (Cheng et al. 2019) with packed Paillier (SecureBoost+, Chen et al. 2021).

Public API::

    from algorithms.secureboost import (VerticalSecureBoost, PlainSecureBoost, BoostParams,
        SecureBoostGuest, SecureBoostHost, SecureBoostGuestPredictor, SecureBoostHostPredictor,
        GuestModel, HostModel, PackingLayout, PackingOverflowError)

Roles are transport-free (``role.run(channel)``). No arbiter takes part: the guest holds its own key.
What each party sends, receives and learns: :mod:`.guest`, :mod:`.host`, :mod:`.prediction`.
"""

from algorithms.secureboost.data import InputError
from algorithms.secureboost.estimator import VerticalSecureBoost, federated_predict
from algorithms.secureboost.guest import SecureBoostGuest
from algorithms.secureboost.host import SecureBoostHost
from algorithms.secureboost.model import GuestModel, HostModel, HostSplit, TreeNode
from algorithms.secureboost.packing import PackingLayout, PackingOverflowError
from algorithms.secureboost.params import BoostParams
from algorithms.secureboost.plain import PlainSecureBoost
from algorithms.secureboost.prediction import SecureBoostGuestPredictor, SecureBoostHostPredictor

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
