"""Who sent a public request: its address, believing X-Forwarded-For only from trusted
proxies, and the headers the faces record."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from litestar.types import Scope

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address, or None for anything else, an IPv6 address with a zone id included
    (`fe80::1%eth0`): a zone names an interface of whichever machine wrote it, means
    nothing here, and is text of any length."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return None
    return address


@dataclass(frozen=True)
class TrustedProxies:
    """Addresses and CIDRs of the reverse proxies in front of the app (none by default)."""

    networks: tuple[IPNetwork, ...] = ()

    def trusts(self, address: str) -> bool:
        parsed = _parse_address(address)
        return parsed is not None and any(parsed in network for network in self.networks)

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The peer, or, behind trusted proxies, the nearest untrusted X-Forwarded-For hop.

        Hops are read right to left because only the right end was written by our
        own proxies; anything further left is whatever the client claimed. A hop with a
        zone id is garbage like any other.
        """
        if peer is not None:
            # The socket may name the interface a link-local peer came in on: the
            # address alone is the client's.
            peer = peer.partition("%")[0]
        if peer is None or not forwarded_for or not self.trusts(peer):
            return peer
        nearest_trusted = peer
        for hop in reversed(forwarded_for.split(",")):
            address = _parse_address(hop)
            if address is None:
                # Garbage in the chain: the last address we can vouch for is the proxy's.
                return nearest_trusted
            if not self.trusts(str(address)):
                return str(address)
            nearest_trusted = str(address)
        return nearest_trusted


@dataclass(frozen=True, slots=True)
class Caller:
    """What the public faces read of a request besides its path and parameters, taken
    straight from the ASGI scope: one pass over the raw headers, none of them parsed
    into a framework's header object on the hot paths."""

    peer: str | None = None
    forwarded_for: str | None = None
    user_agent: str | None = None
    referrer: str | None = None

    @classmethod
    def of_scope(cls, scope: Scope) -> Caller:
        found: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            # The first of a repeated header counts, as with Litestar's headers.
            if name in _CALLER_HEADERS and name not in found:
                found[name] = value.decode("latin-1")
        client = scope.get("client")
        return cls(
            peer=client[0] if client else None,
            forwarded_for=found.get(b"x-forwarded-for"),
            user_agent=found.get(b"user-agent"),
            referrer=found.get(b"referer"),
        )

    def client_ip(self, trusted_proxies: TrustedProxies) -> str | None:
        return trusted_proxies.client_ip(self.peer, self.forwarded_for)


# ASGI servers hand header names over in lower case.
_CALLER_HEADERS = frozenset({b"x-forwarded-for", b"user-agent", b"referer"})
