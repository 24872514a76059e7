"""A silo (bank, insurer, ...): its private table, local preprocessing and store, and the service that runs
protocol roles for the jobs the arbiter starts.

Modules: :mod:`silo.config` (``bank.toml``), :mod:`silo.data` (sources, validation, schema digest),
:mod:`silo.preprocess`, :mod:`silo.store` (model parts, checkpoints), :mod:`silo.jobs` (what a silo
does per stage, with the roles of the job's plug-in from :mod:`algorithms.catalogue`), :mod:`silo.control`
(arbiter ↔ silo control plane), :mod:`silo.service` (``fedrisk silo serve``), :mod:`silo.evaluation`
(guest-side metrics).

What it reveals to whom: rows, ids, labels, weights and preprocessing parameters never leave the silo;
see each module for what its messages carry.
"""
