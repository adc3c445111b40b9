"""A quick "is there a network?" probe, so offline downloads fail in seconds, not minutes.

Keras' `get_file` and TFDS both retry for minutes when DNS is down. A TCP connect to the download
host in a daemon thread, bounded by `join(timeout)`, answers in at most `timeout` seconds: the
thread bound matters because `getaddrinfo` ignores socket timeouts. Standard library only.
"""
from __future__ import annotations

import socket
import threading
import urllib.parse
import urllib.request


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """True when a TCP connection to `host:port` opens within `timeout` seconds."""
    result = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name=f"probe-{host}", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result) and result[0]


def url_reachable(url: str, timeout: float = 3.0) -> bool:
    """`reachable` for the host of `url`, or for the HTTP(S) proxy urllib would use to fetch it."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxy_parts.hostname, proxy_parts.port or 80
    return reachable(host, port, timeout)
