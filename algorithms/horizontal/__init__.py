"""Horizontal federated learning: FedAvg, FedProx, SCAFFOLD, FedAdam, FedYogi, FedNova over client silos.

Clients hold rows with the same columns; the arbiter aggregates. The round loop lives once in
:mod:`~algorithms.horizontal.aggregator`; strategies (:mod:`~algorithms.horizontal.strategy` and one module
per variant) fill in its steps; :mod:`~algorithms.horizontal.collector` is the seam where updates are
summed (plain here, secure aggregation elsewhere). Local models: :mod:`~algorithms.horizontal.nets`
(logistic regression, MLP), sklearn-style in :mod:`~algorithms.horizontal.estimators`. In-process runs:
:class:`~algorithms.horizontal.estimator.FederatedClassifier`.

What it reveals to whom: see :mod:`algorithms.horizontal.plugin` (disclosures per message) and the role
modules.
"""

from algorithms.horizontal.estimators import LocalLogisticRegression, LocalMLPClassifier
from algorithms.horizontal.params import FederationError, HorizontalParams

__all__ = ["FederationError", "HorizontalParams", "LocalLogisticRegression", "LocalMLPClassifier"]
