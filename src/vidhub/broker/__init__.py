"""Broker ABC with memory and Redis engines (cross-node fan-out)."""
