"""Settings of the servers `make bench` starts: the project's own, with the benchmark's baseline views routed."""

from itirp.settings import *  # noqa: F403 - the same settings in every respect but the one below

ROOT_URLCONF = "bench.urls"
