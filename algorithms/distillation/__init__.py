"""Federated distillation between silos whose model families differ (FedMD / FedDF / DS-FL line of work).

Every silo trains its own model family, predicts soft labels on a reference set of unlabelled rows, the
aggregator combines them into a consensus weighted by each silo's held-out quality (optionally with DS-FL's
entropy reduction), and each silo distils the consensus into its own model together with its own labelled
rows, keeping the result only if its held-out AUC does not get worse.

What it reveals to whom: see :mod:`algorithms.distillation.client` and :mod:`algorithms.distillation.aggregator`.
"""

from algorithms.distillation.estimator import FederatedDistillation, party_data
from algorithms.distillation.families import FAMILIES, ModelFamily, make_family
from algorithms.distillation.params import DistillationParams

__all__ = ["FAMILIES", "DistillationParams", "FederatedDistillation", "ModelFamily", "make_family", "party_data"]
