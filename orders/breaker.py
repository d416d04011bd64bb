"""Circuit breaker around venue calls, shared by every worker process (Redis, or a locked file in demo mode).

CLOSED -> OPEN after BREAKER_FAILURE_THRESHOLD consecutive transient failures; OPEN refuses calls for
BREAKER_OPEN_SECONDS; then the first caller moves it to HALF_OPEN and holds the one trial token: every
other caller, in any process, is refused until the trial ends. The trial's success closes the breaker,
its failure opens it again. A trial whose worker died frees its token after BREAKER_TRIAL_TIMEOUT_SECONDS.

The state machine is one pure function (`_acquire`, `_result`) applied atomically to the shared state:
in Redis with WATCH/MULTI (optimistic, retried on conflict; Redis server time, so hosts need not agree
on clocks), in demo mode under an exclusive file lock. pybreaker's Redis storage is not used because its
half-open state lets every concurrent caller through.

Redis unreachable: the breaker fails safe by treating itself as CLOSED (calls go on, each still bounded by
the venue timeout and the order's attempts) and logs it. Refusing every order because the breaker's own
bookkeeping is down would turn a Redis hiccup into a trading halt; halting is the kill switch's job.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from django.conf import settings
from django.db import transaction

from audit.models import EventType
from audit.services import event_record

logger = logging.getLogger("itirp.breaker")

CLOSED, OPEN, HALF_OPEN = "CLOSED", "OPEN", "HALF_OPEN"
TRANSITION_EVENTS = {
    OPEN: EventType.CIRCUIT_BREAKER_OPENED,
    HALF_OPEN: EventType.CIRCUIT_BREAKER_HALF_OPENED,
    CLOSED: EventType.CIRCUIT_BREAKER_CLOSED,
}
T = TypeVar("T")


@dataclass(frozen=True)
class BreakerState:
    status: str = CLOSED
    failures: int = 0
    open_until: float = 0.0  # epoch seconds
    trial_token: str = ""
    trial_until: float = 0.0


@dataclass(frozen=True)
class Config:
    threshold: int
    open_seconds: float
    trial_seconds: float

    @classmethod
    def from_settings(cls) -> Config:
        return cls(
            threshold=settings.BREAKER_FAILURE_THRESHOLD,
            open_seconds=settings.BREAKER_OPEN_SECONDS,
            trial_seconds=settings.BREAKER_TRIAL_TIMEOUT_SECONDS,
        )


@dataclass(frozen=True)
class Transition:
    previous: str
    status: str
    failures: int
    open_until: float


@dataclass(frozen=True)
class Permit:
    """Leave to call the venue. `token` is set for the half-open trial; `degraded` when the store is down."""

    token: str = ""
    degraded: bool = False

    @property
    def trial(self) -> bool:
        return bool(self.token)


class BreakerOpen(Exception):
    """The breaker refused the call: the venue is not called."""

    def __init__(self, reason: str, open_until: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.open_until = reason, open_until


# --- The pure state machine ------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    permit: Permit | None
    refusal: str = ""
    transitions: tuple[Transition, ...] = field(default=())


def _acquire(state: BreakerState, now: float, token: str, cfg: Config) -> tuple[BreakerState, Verdict]:
    if state.status == CLOSED:
        return state, Verdict(Permit())
    moved: tuple[Transition, ...] = ()
    if state.status == OPEN:
        if now < state.open_until:
            return state, Verdict(None, "Circuit breaker open")
        state = replace(state, status=HALF_OPEN, trial_token="", trial_until=0.0)
        moved = (Transition(OPEN, HALF_OPEN, state.failures, state.open_until),)
    if state.trial_token and now < state.trial_until:
        return state, Verdict(None, "Circuit breaker half-open: trial call in progress", moved)
    state = replace(state, trial_token=token, trial_until=now + cfg.trial_seconds)
    return state, Verdict(Permit(token=token), transitions=moved)


def _result(
    state: BreakerState, now: float, permit: Permit, success: bool, cfg: Config
) -> tuple[BreakerState, tuple[Transition, ...]]:
    if permit.trial:
        if state.status != HALF_OPEN or state.trial_token != permit.token:
            return state, ()  # a trial that outlived its token: its answer no longer decides anything
        if success:
            return BreakerState(), (Transition(HALF_OPEN, CLOSED, 0, 0.0),)
        reopened = BreakerState(status=OPEN, failures=state.failures + 1, open_until=now + cfg.open_seconds)
        return reopened, (Transition(HALF_OPEN, OPEN, reopened.failures, reopened.open_until),)
    if state.status != CLOSED:
        return state, ()  # a call that began before the breaker opened
    if success:
        return (replace(state, failures=0) if state.failures else state), ()
    failures = state.failures + 1
    if failures < cfg.threshold:
        return replace(state, failures=failures), ()
    opened = BreakerState(status=OPEN, failures=failures, open_until=now + cfg.open_seconds)
    return opened, (Transition(CLOSED, OPEN, failures, opened.open_until),)


# --- Shared stores ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def redis_client() -> Any:
    """One redis-py client per process (its pool reconnects after a fork), with short timeouts."""
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=2)


class RedisStore:
    def __init__(self, client: Any, key: str) -> None:
        self.client, self.key = client, key

    def update(self, step: Callable[[BreakerState, float], tuple[BreakerState, T]]) -> T:
        """Apply `step` (pure) to the shared state atomically. Most steps change nothing (a call while CLOSED,
        a success with no failures counted): the state and the server's time are read in one round trip and,
        when the step leaves the state as it is, that answer stands (linearised at the read). A step that
        changes it is decided again on the state read under WATCH and written with MULTI/EXEC."""
        from redis.exceptions import WatchError

        with self.client.pipeline(transaction=False) as read:
            raw, (seconds, micros) = read.hgetall(self.key).time().execute()
        state = _decode(raw)
        new, out = step(state, seconds + micros / 1e6)
        if new == state:
            return out
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.key)
                    state = _decode(pipe.hgetall(self.key))
                    seconds, micros = pipe.time()
                    new, out = step(state, seconds + micros / 1e6)
                    pipe.multi()
                    if new != state:
                        pipe.hset(self.key, mapping={k: str(v) for k, v in asdict(new).items()})
                    pipe.execute()
                    return out
                except WatchError:
                    continue

    def read(self) -> tuple[BreakerState, float]:
        seconds, micros = self.client.time()
        return _decode(self.client.hgetall(self.key)), seconds + micros / 1e6

    def reset(self) -> None:
        self.client.delete(self.key)


def _decode(raw: dict[Any, Any]) -> BreakerState:
    if not raw:
        return BreakerState()
    data = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()
    }
    return BreakerState(
        status=data.get("status", CLOSED),
        failures=int(data.get("failures", 0)),
        open_until=float(data.get("open_until", 0)),
        trial_token=data.get("trial_token", ""),
        trial_until=float(data.get("trial_until", 0)),
    )


class FileStore:
    """Demo mode: the state as JSON in VAR_DIR, changed under an exclusive lock by the processes of one host."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path, self.lock_path = folder / "breaker.json", folder / "breaker.lock"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self) -> BreakerState:
        if not self.path.exists():
            return BreakerState()
        return _decode(json.loads(self.path.read_text() or "{}"))

    def update(self, step: Callable[[BreakerState, float], tuple[BreakerState, T]]) -> T:
        with self._locked():
            state = self._load()
            new, out = step(state, time.time())
            if new != state:
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(asdict(new)))
                tmp.replace(self.path)
            return out

    def read(self) -> tuple[BreakerState, float]:
        with self._locked():
            return self._load(), time.time()

    def reset(self) -> None:
        with self._locked():
            self.path.unlink(missing_ok=True)


def store() -> RedisStore | FileStore:
    if settings.REDIS_URL:
        return RedisStore(redis_client(), f"{settings.EXECUTION_REDIS_PREFIX}:breaker")
    return FileStore(Path(settings.VAR_DIR) / "breaker")


# --- What execution calls ----------------------------------------------------------------------------


def _iso(epoch: float) -> str | None:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat() if epoch else None


def _record(transitions: tuple[Transition, ...], *, correlation_id: uuid.UUID | None, context: dict[str, Any]) -> None:
    for t in transitions:
        level = logging.WARNING if t.status != CLOSED else logging.INFO
        logger.log(level, "circuit breaker %s -> %s (failures %s)", t.previous, t.status, t.failures)
        try:
            with transaction.atomic():
                event_record(
                    event_type=TRANSITION_EVENTS[t.status],
                    correlation_id=correlation_id,
                    payload={
                        "from": t.previous,
                        "to": t.status,
                        "failures": t.failures,
                        "open_until": _iso(t.open_until),
                        **context,
                    },
                )
        except Exception:  # noqa: BLE001 - the transition happened; losing its event must not lose the order
            logger.exception("could not record circuit breaker event %s -> %s", t.previous, t.status)


def _degraded(what: str, exc: Exception) -> None:
    logger.warning("circuit breaker store unreachable (%s: %s): %s treated as CLOSED", type(exc).__name__, exc, what)


class Caller(NamedTuple):
    """Who asks or answers: the event of a transition it causes carries these."""

    correlation_id: uuid.UUID | None = None
    context: dict[str, Any] | None = None


def breaker_acquire(*, correlation_id: uuid.UUID | None = None, context: dict[str, Any] | None = None) -> Permit:
    """Leave to call the venue, or BreakerOpen. Records OPEN -> HALF_OPEN when this caller makes it."""
    (answer,) = breaker_acquire_each([Caller(correlation_id, context)])
    if isinstance(answer, BreakerOpen):
        raise answer
    return answer


def breaker_acquire_each(callers: Sequence[Caller]) -> list[Permit | BreakerOpen]:
    """breaker_acquire for each caller in turn (an execution group's calls), in one atomic update of the shared
    state: one Redis round trip for the group while CLOSED, not one per call. The answers are those of the
    same acquires made one after the other with no other process between them: while HALF_OPEN the first
    takes the trial and the rest are refused; the caller that moves OPEN -> HALF_OPEN records it."""
    cfg = Config.from_settings()
    tokens = [uuid.uuid4().hex for _ in callers]

    def step(state: BreakerState, now: float) -> tuple[BreakerState, list[Verdict]]:
        verdicts = []
        for token in tokens:
            state, verdict = _acquire(state, now, token, cfg)
            verdicts.append(verdict)
        return state, verdicts

    try:
        verdicts = store().update(step)
    except Exception as exc:  # noqa: BLE001 - fail safe: see the module docstring
        _degraded("call", exc)
        return [Permit(degraded=True) for _ in callers]
    answers: list[Permit | BreakerOpen] = []
    for caller, verdict in zip(callers, verdicts, strict=True):
        _record(verdict.transitions, correlation_id=caller.correlation_id, context=caller.context or {})
        answers.append(verdict.permit if verdict.permit is not None else BreakerOpen(verdict.refusal))
    return answers


def breaker_record(
    *, permit: Permit, success: bool, correlation_id: uuid.UUID | None = None, context: dict[str, Any] | None = None
) -> None:
    """Count a venue call's result: success means the venue answered (a fill or a rejection)."""
    breaker_record_each([(permit, success, Caller(correlation_id, context))])


def breaker_record_each(results: Sequence[tuple[Permit, bool, Caller]]) -> None:
    """breaker_record for each (permit, success, caller) in turn, in one atomic update of the shared state (as
    breaker_acquire_each): a success resets the count of the failures before it, so the order is the calls'."""
    counted = [(permit, success, caller) for permit, success, caller in results if not permit.degraded]
    if not counted:
        return
    cfg = Config.from_settings()

    def step(state: BreakerState, now: float) -> tuple[BreakerState, list[tuple[Transition, ...]]]:
        moves = []
        for permit, success, _ in counted:
            state, moved = _result(state, now, permit, success, cfg)
            moves.append(moved)
        return state, moves

    try:
        moves = store().update(step)
    except Exception as exc:  # noqa: BLE001 - fail safe
        _degraded("result", exc)
        return
    for (_, _, caller), moved in zip(counted, moves, strict=True):
        _record(moved, correlation_id=caller.correlation_id, context=caller.context or {})


def _snapshot(state: BreakerState, now: float) -> dict[str, Any]:
    status = state.status
    if status == OPEN and now >= state.open_until:
        status = HALF_OPEN
    return {
        "status": status,
        "failures": state.failures,
        "open_until": _iso(state.open_until) if status != CLOSED else None,
    }


def breaker_snapshot() -> dict[str, Any]:
    """{"status": CLOSED|OPEN|HALF_OPEN, "failures": int, "open_until": iso str|None} for metrics and health.

    An OPEN breaker whose open period is over is shown HALF_OPEN: the next call will be its trial.
    With its store unreachable the breaker behaves CLOSED, and says so (the failure is logged).
    """
    try:
        return _snapshot(*store().read())
    except Exception as exc:  # noqa: BLE001 - metrics must answer while Redis is down
        _degraded("snapshot", exc)
        return {"status": CLOSED, "failures": 0, "open_until": None}


def breaker_check() -> dict[str, Any]:
    """For health checks: the snapshot plus its backend, raising when the breaker's store cannot be read."""
    snapshot = _snapshot(*store().read())
    snapshot["backend"] = "redis" if settings.REDIS_URL else "file"
    return snapshot


def breaker_reset() -> None:
    """Forget the breaker's state (tests and operators after a venue incident)."""
    store().reset()
