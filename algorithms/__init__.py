"""fedrisk algorithms: the Paillier layer, vertical LR, SecureBoost and risk metrics.

Protocol code here is transport-free: roles talk through :class:`federation.channel.Channel`.
"""
