"""make bench's servers: a port another process holds stops the run, instead of the run measuring that process
(gunicorn retries its bind for seconds while the other server answers the readiness check)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "bench"))
    import servers

    yield servers
    sys.modules.pop("servers", None)


def test_assert_port_free_when_another_process_listens_then_the_run_stops(servers: Any) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(SystemExit, match=f"port {port} is in use"):
            servers.assert_port_free(port)
    servers.assert_port_free(port)  # free again once the other server is gone
