"""Which address is the player's: X-Forwarded-For counts only from trusted proxies."""

from __future__ import annotations

import ipaddress

from pixel.client_ip import TrustedProxies

PROXIES = TrustedProxies((ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")))


def test_without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() -> None:
    assert TrustedProxies().client_ip("127.0.0.1", "198.51.100.9") == "127.0.0.1"


def test_an_untrusted_peer_cannot_spoof_its_address() -> None:
    assert PROXIES.client_ip("203.0.113.5", "198.51.100.9") == "203.0.113.5"


def test_behind_a_trusted_proxy_the_forwarded_address_counts() -> None:
    assert PROXIES.client_ip("10.0.0.2", "198.51.100.9") == "198.51.100.9"


def test_the_first_untrusted_hop_from_the_right_is_the_client() -> None:
    # The client prepended a fake hop; only the right end was written by our proxies.
    assert PROXIES.client_ip("10.0.0.2", "1.2.3.4, 198.51.100.9, 10.0.0.7") == "198.51.100.9"


def test_garbage_in_the_chain_stops_at_the_last_address_we_trust() -> None:
    assert PROXIES.client_ip("10.0.0.2", "1.2.3.4, not-an-ip, 10.0.0.7") == "10.0.0.7"


def test_ipv6_peers_and_hops() -> None:
    assert PROXIES.client_ip("::1", "2001:db8::1") == "2001:db8::1"


def test_no_header_means_the_peer() -> None:
    assert PROXIES.client_ip("10.0.0.2", None) == "10.0.0.2"


def test_a_hop_with_a_zone_id_is_garbage_and_the_proxy_counts() -> None:
    # The zone is text of any length; the address must never carry it into a store.
    assert PROXIES.client_ip("10.0.0.2", "fe80::1%eth0") == "10.0.0.2"
    assert PROXIES.client_ip("10.0.0.2", f"fe80::1%{'x' * 300}, 10.0.0.7") == "10.0.0.7"


def test_a_link_local_peer_counts_without_its_zone() -> None:
    assert TrustedProxies().client_ip("fe80::1%eth0", None) == "fe80::1"
