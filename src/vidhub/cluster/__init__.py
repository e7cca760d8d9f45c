"""Multi-node routing: actions on live participants reach the node that serves them."""

from __future__ import annotations

from vidhub.cluster.relay import ClusterGateway, node_channel

__all__ = ["ClusterGateway", "node_channel"]
