"""The web server: ITIRP's WSGI application under granian (`python -m itirp.serve --bind HOST:PORT`).

granian is a Rust HTTP server (hyper, tokio) that hands each request to a pool of Python threads; gunicorn parses
HTTP and runs its event loop in Python, under the GIL the requests need. It replaced gunicorn gthread as the
default after five same-run pairs at the same shape, one process of 8 threads (issue 19, item 4; two quick runs
and three make bench runs, bench/results/quick-session13.md and cost-session13-*.md): the web's CPU per order
2.94 ms on average against 3.21, p99 at 8 connections 100 ms against 118, orders/s 232 against 222, granian
ahead in four pairs of five on each. One process of 8 threads for the same reason as before: the submissions of one
process reach its group commit together (ninth session).

What gunicorn.conf.py did, done here: JSON log lines from the server itself (the one formatter, core.logs), no
access log (every request writes one request_finished line), the Prometheus directory cleared of dead processes'
files before the workers start, a worker that dies started again, 5 s for requests in flight on SIGTERM.
gunicorn stays installed, gunicorn.conf.py with it, for make bench's comparison and for those who prefer it.

Settings: --bind, --workers, --threads, or WEB_BIND, WEB_WORKERS, WEB_THREADS (default 127.0.0.1:8000, 1, 8);
LOG_LEVEL as everywhere.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
from collections.abc import Sequence
from typing import Any

GRACE_SECONDS = 5
APPLICATION = "itirp.wsgi:application"


def options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m itirp.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--bind", default=os.environ.get("WEB_BIND", "127.0.0.1:8000"), help="HOST:PORT")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_WORKERS", "1")), help="processes")
    parser.add_argument(
        "--threads", type=int, default=int(os.environ.get("WEB_THREADS", "8")), help="request threads per process"
    )
    args = parser.parse_args(argv)
    host, colon, port = args.bind.rpartition(":")
    if not colon or not host or not port.isdigit() or args.workers < 1 or args.threads < 1:
        parser.error(
            f"--bind HOST:PORT, --workers and --threads at least 1 (got {args.bind!r}, {args.workers}, {args.threads})"
        )
    args.host, args.port = host.strip("[]"), int(port)
    return args


class MeasuredThreads(logging.Filter):
    """Drops granian's start-up advice to run fewer Python threads than 8 on a small host: its threads mostly wait
    for PostgreSQL and the risk lock, and 8 per process measured best (see above), so the WARNING at every start
    would only teach operators to ignore warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Configuration allows spawning up to")


def logging_config(level: str) -> dict[str, Any]:
    """granian's own loggers (_granian, granian.access) through the one JSON formatter; the access log dropped."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "core.logs.formatter"}},  # LOG_FORMAT: json (default) or console
        "filters": {"measured_threads": {"()": MeasuredThreads}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
                "filters": ["measured_threads"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "_granian": {"handlers": ["console"], "level": level, "propagate": False},
            "granian.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def server(args: argparse.Namespace) -> Any:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    level = os.environ.get("LOG_LEVEL", "info").lower()
    return Granian(
        APPLICATION,
        address=args.host,
        port=args.port,
        interface=Interfaces.WSGI,
        workers=args.workers,
        blocking_threads=args.threads,
        websockets=False,
        respawn_failed_workers=True,
        workers_kill_timeout=GRACE_SECONDS,
        log_level=LogLevels(level),
        log_dictconfig=logging_config(level),
        log_access=False,
    )


def main(argv: Sequence[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
    os.environ.setdefault("ITIRP_PROCESS", "web")
    args = options(argv)
    logging.config.dictConfig(logging_config(os.environ.get("LOG_LEVEL", "info")))
    from core import metrics
    from core.logs import get_logger

    removed = metrics.multiproc_dir_prepare()
    instance = server(args)
    get_logger("web").info(
        "web server starting",
        bind=f"{args.host}:{args.port}",
        workers=args.workers,
        threads=args.threads,
        metrics_dir=metrics.multiproc_dir(),
        stale_metrics_files_removed=len(removed),
    )
    instance.serve()


if __name__ == "__main__":
    main()
