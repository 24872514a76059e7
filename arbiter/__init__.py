"""The arbiter: job store and model registry, the job runner (``fedrisk arbiter run|resume|status``),
configs, the in-process simulation, the one-command demo and evaluation reports.

What it reveals to whom: the arbiter holds job specs, schema digests, aggregate metrics and content
hashes of each silo's model part; its protocol role sees what the algorithm's module documents.
"""
