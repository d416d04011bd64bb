"""gunicorn settings for ITIRP's web processes (gunicorn -c gunicorn.conf.py itirp.wsgi:application ...).

JSON log lines from gunicorn itself (the same formatter as Django's); no access log, because every request
already logs one request_finished line with its status, duration, user and correlation id. Prometheus
multi-process bookkeeping (ecosystem.md, pitfall 9): the master clears dead processes' files before it forks,
and marks each worker that exits as dead.
Bind address, worker count and the like stay on the command line (Procfile.dev, docker-compose.yml).
"""

import os

from gunicorn import glogging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
os.environ.setdefault("ITIRP_PROCESS", "web")

wsgi_app = "itirp.wsgi:application"
# Threaded workers, chosen by measurement (make bench, README "Performance"): a sync worker closes the
# connection after every answer and sits idle while its request waits for PostgreSQL and the risk lock; a
# gthread worker keeps connections alive and overlaps those waits. --workers stays on the command line: one
# process of 8 threads on a 2-core host (ninth session: its submissions are decided in batches of ~4 under one
# hold of the risk lock, where two processes of 4 made batches of ~1.5 and took turns at the lock: 1.25x the
# orders/s for ~20 % less CPU per order); GUNICORN_THREADS changes the threads per worker.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
graceful_timeout = 5
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "core.logs.formatter"}},  # LOG_FORMAT: json (default) or console
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "root": {"handlers": ["console"], "level": loglevel.upper()},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


class Logger(glogging.Logger):
    """gunicorn's logger without the access log's work per request. With logconfig_dict set, gunicorn counts the
    access log as enabled and builds every request's atoms (a dict of some twenty entries, headers included)
    only for gunicorn.access to drop them at WARNING: accesslog is None here, request_finished being the access
    line. An access log asked for on the command line (--access-logfile) is written as gunicorn writes it."""

    def access(self, resp, req, environ, request_time):  # noqa: ANN001, ANN201 - gunicorn's signature
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)


logger_class = Logger


def on_starting(server):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """Before the first fork: settings loaded, the metrics directory ready and free of dead processes' files."""
    from core import metrics

    removed = metrics.multiproc_dir_prepare()
    server.log.info("metrics directory %s ready (%d stale files removed)", metrics.multiproc_dir(), len(removed))


def child_exit(server, worker):  # noqa: ANN001, ANN201
    from core import metrics

    metrics.mark_process_dead(worker.pid)
