"""Where a channel's credentials may go: its kind's declared hosts over https, and the hosts the settings add.

An endpoint is part of a channel's credentials: the hub sends the secrets to whatever URL the channel names,
so a URL is checked here when it is saved and again by the HTTP client on every call.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from django.conf import settings

from channels.connectors import connector_class
from channels.connectors.http import host_allowed

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def channel_endpoint_fields(*, kind: str) -> tuple[str, ...]:
    """The URL settings this kind sends credentials to (api_base_url, auth_base_url)."""
    return tuple(connector_class(kind).allowed_hosts)


def channel_allowed_hosts(*, kind: str, urls: Mapping[str, str] | None = None) -> frozenset[str]:
    """Every host a channel of this kind may send its credentials to. `urls`, the channel's URL settings, add
    the host of each that names the seller's own server (a WooCommerce shop), once it passes the endpoint rules."""
    connector = connector_class(kind)
    declared = {host for hosts in connector.allowed_hosts.values() for host in hosts}
    own = {
        (urlsplit(url).hostname or "").lower() for field, url in (urls or {}).items()
        if field in connector.seller_hosted_urls and url
        and not channel_endpoint_problem(kind=kind, field=field, url=url)
    }
    return frozenset(declared | (own - {""}) | set(settings.CHANNEL_EXTRA_ALLOWED_HOSTS))


def _public_host_problem(host: str) -> str:
    """Why a host named for the seller's own server is not one the internet reaches; empty when it is."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and not address.is_global:
        return "This address is not on the public internet: name the shop by its public host name."
    if address is None and (host == "localhost" or host.endswith(".localhost") or "." not in host):
        return "Name the shop by its public host name, e.g. shop.example.com."
    return ""


def channel_endpoint_problem(*, kind: str, field: str, url: str) -> str:
    """Why `url` may not be this channel's `field`; empty when it may."""
    if not url:
        return ""
    connector = connector_class(kind)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    declared = connector.allowed_hosts.get(field, ())
    extra = settings.CHANNEL_EXTRA_ALLOWED_HOSTS
    if parts.username or parts.password:
        return "Put no user name or password in the URL: the channel's secrets go in their own fields."
    if field in connector.seller_hosted_urls and host not in extra:
        if not host:
            return "Give the shop's whole address, e.g. https://shop.example.com."
        if parts.scheme != "https":
            return "Use https: the channel's secrets are sent to this address."
        return _public_host_problem(host)
    if not host_allowed(host, declared) and host not in extra:
        return (
            f"{connector.label} credentials are only sent to {', '.join(declared)}. Another host must be named "
            "in the CHANNEL_EXTRA_ALLOWED_HOSTS setting first."
        )
    if parts.scheme != "https" and not (parts.scheme == "http" and host in extra and host in LOOPBACK_HOSTS):
        return "Use https: the channel's secrets are sent to this address."
    return ""
