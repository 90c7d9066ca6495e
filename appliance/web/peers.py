"""Which TCP peers the panel counts as one client, for every cap it keeps per address: the connections one
peer may hold (appliance.web.serve), the login throttle's failures and lock (appliance.web.account_views) and
the refusals audited without an account (appliance.web.accounts).

An IPv4 address is one client. An IPv6 address counts with its whole /64 (:data:`V6_PREFIX`): a host, or one
network's router, is handed a /64 and may take any of its 2^64 addresses, so counting each alone would give one
client as many shares as it likes. An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, how a socket listening
on ``::`` sees an IPv4 peer) is its IPv4 address. Anything else (``console``, ``unknown``) is itself.
"""

from __future__ import annotations

import functools
import ipaddress

V6_PREFIX = 64
"""The IPv6 prefix length that counts as one client."""


@functools.lru_cache(maxsize=4096)
def peer_group(address: str) -> str:
    """The client `address` counts as: itself for IPv4 (and for what is not an address), the IPv4 address of an
    IPv4-mapped one, the /64 network (``2001:db8:1:2::/64``) of any other IPv6 address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, V6_PREFIX), strict=False))
    return str(ip)
