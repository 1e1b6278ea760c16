"""The failover gateway: the recommender's front service and the system under test.

Run it with ``python -m chaosrec.stack.gateway --config gateway.json``.
"""

from chaosrec.stack.gateway.config import GatewayConfig, PolicyConfig, UpstreamConfig

__all__ = ["GatewayConfig", "PolicyConfig", "UpstreamConfig"]
