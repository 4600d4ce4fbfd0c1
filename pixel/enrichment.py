"""What a browser request tells us: client IP, user-agent families and country.

One module for the tracking link and the pixel, so clicks and browser-fired
conversions are enriched alike. Everything is offline: ua-parser's bundled rules
and the GeoLite2 country data that ships inside the geoip2fast package. Both sit on
the hot path, so user-agent parses and address look-ups are cached and the country
data is loaded once per process (`load_country_data`, called at start-up).
"""

from __future__ import annotations

import ipaddress
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

import ua_parser
from geoip2fast import GeoIP2Fast

from models.clicks.service import MAX_HEADER_VALUE_LENGTH
from models.metadata import RequestMetadata
from models.store.tables import MAX_FAMILY_LENGTH
from pixel.client_ip import Caller, TrustedProxies

# The package's file with both IPv4 and IPv6 networks (its own default holds IPv4 only),
# by full path: geoip2fast would look for a bare file name in the working directory first.
DEFAULT_COUNTRY_DATA_FILE = str(files("geoip2fast").joinpath("geoip2fast-ipv6.dat.gz"))
# Distinct user agents are few next to requests; this bounds the cache's memory.
USER_AGENT_CACHE_SIZE = 4096
# Addresses repeat too (an operator's servers, a busy network's NAT): about 3 MB.
ADDRESS_CACHE_SIZE = 16384


@dataclass(frozen=True)
class UserAgentFamilies:
    browser: str | None = None
    os: str | None = None
    device: str | None = None


@lru_cache(maxsize=USER_AGENT_CACHE_SIZE)
def user_agent_families(user_agent: str) -> UserAgentFamilies:
    """Browser, OS and device family; ua-parser's "Other" when a part is not recognised."""
    if not user_agent:
        return UserAgentFamilies()
    parsed = ua_parser.parse(user_agent).with_defaults()
    return UserAgentFamilies(
        browser=parsed.user_agent.family[:MAX_FAMILY_LENGTH],
        os=parsed.os.family[:MAX_FAMILY_LENGTH],
        device=parsed.device.family[:MAX_FAMILY_LENGTH],
    )


_country_data_lock = threading.Lock()
_country_data: GeoIP2Fast | None = None


def load_country_data(data_file: str = DEFAULT_COUNTRY_DATA_FILE) -> GeoIP2Fast:
    """Load the country database once per process (about 0.2 s and 50 MB).

    geoip2fast keeps its tables in module globals, so one process holds one database:
    the first file loaded wins.
    """
    global _country_data
    with _country_data_lock:
        if _country_data is None:
            _country_data = GeoIP2Fast(verbose=False, geoip2fast_data_file=data_file)
        return _country_data


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def country_of(ip: str | None) -> str | None:
    """The ISO 3166-1 alpha-2 country of a public address; None for any other."""
    return _country_of_address(_address(ip))


def _country_of_address(address: IPAddress | None) -> str | None:
    # Private, loopback, link-local, documentation and reserved ranges have no country.
    if address is None or not address.is_global:
        return None
    code = load_country_data().lookup(str(address)).country_code
    # geoip2fast answers "--" for networks it does not know and "" for errors.
    return code if len(code) == 2 and code.isalpha() else None


def _header_text(value: str | None) -> str | None:
    """A header as we store it: control characters dropped, length bounded."""
    if not value:
        return None
    # Printable text has no control characters: the common case skips the scan.
    if not value.isprintable():
        value = "".join(character for character in value if unicodedata.category(character) != "Cc")
    return value[:MAX_HEADER_VALUE_LENGTH] or None


def _address(value: str | None) -> IPAddress | None:
    """An IP address, or None (a Unix socket, a test client)."""
    if not value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@lru_cache(maxsize=ADDRESS_CACHE_SIZE)
def address_facts(client_ip: str | None) -> tuple[str | None, str | None]:
    """A client address in its canonical spelling, as stored, and its country."""
    address = _address(client_ip)
    return (str(address) if address else None), _country_of_address(address)


def request_metadata(caller: Caller, trusted_proxies: TrustedProxies) -> RequestMetadata:
    ip, country = address_facts(caller.client_ip(trusted_proxies))
    user_agent = _header_text(caller.user_agent)
    families = user_agent_families(user_agent or "")
    return RequestMetadata(
        ip=ip,
        user_agent=user_agent,
        referrer=_header_text(caller.referrer),
        country=country,
        browser_family=families.browser,
        os_family=families.os,
        device_family=families.device,
    )


def client_address(caller: Caller, trusted_proxies: TrustedProxies) -> str | None:
    """The client's address in its canonical spelling, as stored."""
    return address_facts(caller.client_ip(trusted_proxies))[0]


def request_origin(caller: Caller, trusted_proxies: TrustedProxies) -> RequestMetadata:
    """Where a request came from, as a rejected fire is logged: address, user agent and
    referrer, cleaned as a conversion's are, without the parsing a conversion pays for."""
    return RequestMetadata(
        ip=client_address(caller, trusted_proxies),
        user_agent=_header_text(caller.user_agent),
        referrer=_header_text(caller.referrer),
    )
