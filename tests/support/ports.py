"""Ports for the servers a test starts: free ones, unless the environment names one.

Fixed defaults let two runs on one machine meet on the same port (another checkout's fault stack, a stray
server left by an interrupted run) and then talk to each other's servers; a port the kernel has just
handed out is free at that moment, and a server that cannot bind to it fails at start, loudly.
"""

from __future__ import annotations

import os
import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_from_env(name: str) -> int:
    """The port named by the environment variable `name`, or a free one."""
    value = os.environ.get(name)
    return int(value) if value else free_port()
