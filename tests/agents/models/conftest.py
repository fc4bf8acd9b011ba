"""Fixtures of the provider suite; the loopback upstream itself lives in fake_upstream.py
(a uniquely named module, so tests can import its constants without clashing with
other folders' conftest modules)."""

from fake_upstream import closed_port_url, hangup_url, pool, upstream

__all__ = ["closed_port_url", "hangup_url", "pool", "upstream"]
