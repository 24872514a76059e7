"""Differential privacy: the accountant (dp-accounting), DP-SGD local models, client-level DP-FedAvg.

What it reveals to whom: see each module; the (ε, δ) spent, the mechanism and its sampling assumption are
public figures reported with the model.
"""
