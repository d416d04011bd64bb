"""The web server commands the tests start: production's (`python -m itirp.serve`, granian) and gunicorn's
(gunicorn.conf.py, the alternative), both on the WSGI application."""

from __future__ import annotations

import sys

SERVERS = ("serve", "gunicorn")


def web_command(server: str, port: int, workers: int = 1) -> list[str]:
    bind = ["--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    if server == "serve":
        return [sys.executable, "-m", "itirp.serve", *bind]
    if server == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "itirp.wsgi:application", *bind]
    raise ValueError(server)
