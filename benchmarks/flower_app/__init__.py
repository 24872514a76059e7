"""A Flower 1.42 app (Message API) that runs the benchmark's FedAvg logistic regression (benchmark-only).

It runs in its own virtual environment (made by :mod:`benchmarks.horizontal`) and reads the partitions and
the test split the benchmark writes; it imports nothing from fedrisk.
"""
