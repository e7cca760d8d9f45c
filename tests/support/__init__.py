"""Shared test helpers: a real `vidhub serve` process, ports, time scaling."""
