"""Venue adapters: the interface execution calls, and the simulated venue (latency, fills, failures, scripts).

The venue is the one boundary of ITIRP that may be simulated. The simulator behaves like a venue that knows
client order ids: an order id it has filled before gets the same execution back, so an order re-sent after
a crash or a duplicated message is never filled twice. Its memory and its script counters are shared by
every worker process (Redis, or files in VAR_DIR in demo mode).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger("itirp.venue")

PRICE_PLACES = Decimal("0.00000001")
OUTCOMES = ("ok", "fail", "timeout", "reject")
MEMORY_SECONDS = 7 * 24 * 3600  # how long the venue remembers an order id (far beyond any redelivery)


@dataclass(frozen=True)
class VenueOrder:
    """What is sent to a venue: the order id doubles as the client order id the venue deduplicates on."""

    order_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal | None  # the limit; a MARKET order's protection price, or None (no bound)
    order_type: str = "LIMIT"


@dataclass(frozen=True)
class Execution:
    """One execution report: the whole order filled at `price`."""

    venue: str
    venue_execution_id: str
    quantity: Decimal
    price: Decimal

    def to_json(self) -> str:
        data = asdict(self)
        data["quantity"], data["price"] = str(self.quantity), str(self.price)
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Execution:
        data = json.loads(raw)
        return cls(
            venue=data["venue"],
            venue_execution_id=data["venue_execution_id"],
            quantity=Decimal(data["quantity"]),
            price=Decimal(data["price"]),
        )


class VenueError(Exception):
    """A venue call that produced no execution. Transient ones are retried; a rejection is final."""

    transient = True

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class VenueUnavailable(VenueError):
    pass


class VenueTimeout(VenueError):
    pass


class VenueNotMarketable(VenueError):
    """A limit order the market has not reached: it rests (execution checks it again) until it is marketable
    or ends. Not a failure: the venue answered."""

    transient = False

    def __init__(self, reason: str, market: Decimal | None = None) -> None:
        super().__init__(reason)
        self.market = market


class VenueRejected(VenueError):
    transient = False


class Venue(Protocol):
    name: str

    def execute(self, order: VenueOrder, *, timeout: float) -> Execution:
        """Fill the order or raise a VenueError, answering within `timeout` seconds."""
        ...

    def cancel(self, order_id: str) -> bool:
        """Take the order off the venue: True if it is not (and will not be) filled there, False if it already
        is (too late)."""
        ...

    def replace(self, order: VenueOrder) -> bool:
        """Amend the order held at the venue to these terms: True, or False if it is already filled."""
        ...


@lru_cache(maxsize=1)
def venue() -> Venue:
    """The configured adapter, one per process (settings.VENUE_ADAPTER)."""
    return import_string(settings.VENUE_ADAPTER)()


# --- Shared memory of the simulated venue ------------------------------------------------------------


class VenueMemory(Protocol):
    def recall(self, order_id: str) -> Execution | None: ...

    def remember(self, order_id: str, execution: Execution) -> Execution:
        """Store the execution unless one exists for the order; return the one that is stored."""
        ...

    def next_index(self, counter: str) -> int:
        """0, 1, 2, ... across every process for the same counter name."""
        ...

    def call_opened(self, order_id: str) -> tuple[Execution | None, bool]:
        """A call for the order begins: counted (`calls`), and what it finds read at once: the execution the order
        already has here (`recall`) and whether it was cancelled here (`marked`)."""
        ...

    def calls(self) -> int: ...

    def mark(self, kind: str, order_id: str) -> bool:
        """Set a flag on an order id (cancelled, ...); True if it was not set before."""
        ...

    def marked(self, kind: str, order_id: str) -> bool: ...


class RedisVenueMemory:
    def __init__(self, client: Any, prefix: str) -> None:
        self.client, self.prefix = client, f"{prefix}:venue"

    def recall(self, order_id: str) -> Execution | None:
        raw = self.client.get(f"{self.prefix}:exec:{order_id}")
        return Execution.from_json(raw) if raw else None

    def remember(self, order_id: str, execution: Execution) -> Execution:
        key = f"{self.prefix}:exec:{order_id}"
        if self.client.set(key, execution.to_json(), nx=True, ex=MEMORY_SECONDS):
            return execution
        return Execution.from_json(self.client.get(key))

    def next_index(self, counter: str) -> int:
        key = f"{self.prefix}:script:{counter}"
        index = int(self.client.incr(key)) - 1
        self.client.expire(key, MEMORY_SECONDS)
        return index

    def call_opened(self, order_id: str) -> tuple[Execution | None, bool]:
        # the count and the two reads in one round trip (three before; a call then reads the price and keeps its fill)
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(f"{self.prefix}:calls")
        pipe.get(f"{self.prefix}:exec:{order_id}")
        pipe.exists(f"{self.prefix}:cancelled:{order_id}")
        _, raw, cancelled = pipe.execute()
        return (Execution.from_json(raw) if raw else None), bool(cancelled)

    def calls(self) -> int:
        return int(self.client.get(f"{self.prefix}:calls") or 0)

    def mark(self, kind: str, order_id: str) -> bool:
        return bool(self.client.set(f"{self.prefix}:{kind}:{order_id}", "1", nx=True, ex=MEMORY_SECONDS))

    def marked(self, kind: str, order_id: str) -> bool:
        return bool(self.client.exists(f"{self.prefix}:{kind}:{order_id}"))


class FileVenueMemory:
    """Demo mode (no Redis): one JSON file under an exclusive file lock, shared by the processes of one host."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path, self.lock_path = folder / "venue.json", folder / "venue.lock"

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = json.loads(self.path.read_text()) if self.path.exists() else {}
                data.setdefault("executions", {})
                data.setdefault("counters", {})
                before = json.dumps(data, sort_keys=True)
                yield data
                if json.dumps(data, sort_keys=True) != before:
                    tmp = self.path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(data))
                    tmp.replace(self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def recall(self, order_id: str) -> Execution | None:
        with self._locked() as data:
            raw = data["executions"].get(order_id)
        return Execution.from_json(raw) if raw else None

    def remember(self, order_id: str, execution: Execution) -> Execution:
        with self._locked() as data:
            raw = data["executions"].setdefault(order_id, execution.to_json())
        return Execution.from_json(raw)

    def next_index(self, counter: str) -> int:
        with self._locked() as data:
            index = data["counters"].get(counter, 0)
            data["counters"][counter] = index + 1
        return index

    def call_opened(self, order_id: str) -> tuple[Execution | None, bool]:
        with self._locked() as data:
            data["counters"]["__calls__"] = data["counters"].get("__calls__", 0) + 1
            raw = data["executions"].get(order_id)
            cancelled = order_id in data.get("marks", {}).get("cancelled", {})
        return (Execution.from_json(raw) if raw else None), cancelled

    def calls(self) -> int:
        with self._locked() as data:
            return int(data["counters"].get("__calls__", 0))

    def mark(self, kind: str, order_id: str) -> bool:
        with self._locked() as data:
            marks = data.setdefault("marks", {}).setdefault(kind, {})
            fresh = order_id not in marks
            marks[order_id] = 1
        return fresh

    def marked(self, kind: str, order_id: str) -> bool:
        with self._locked() as data:
            return order_id in data.get("marks", {}).get(kind, {})


def venue_memory() -> VenueMemory:
    if settings.REDIS_URL:
        from orders.breaker import redis_client

        return RedisVenueMemory(redis_client(), settings.EXECUTION_REDIS_PREFIX)
    return FileVenueMemory(Path(settings.VAR_DIR) / "venue")


# --- The simulator -------------------------------------------------------------------------------------


def parse_script(text: str) -> tuple[str, ...]:
    steps = tuple(s.strip().lower() for s in text.split(",") if s.strip())
    unknown = [s for s in steps if s not in OUTCOMES]
    if unknown:
        raise ValueError(f"VENUE_SCRIPT steps must be one of {', '.join(OUTCOMES)}; got {', '.join(unknown)}")
    return steps


def _quoted(quote: Any, side: str) -> Decimal | None:
    """The price an order of `side` trades at by a quote (market.prices.Quote): the ask for a buy, the bid for
    a sell, else the last; None without a quote."""
    if quote is None:
        return None
    price = quote.ask if side == "BUY" else quote.bid
    return price if price is not None else quote.last


def _short_of(order: VenueOrder, market: Decimal | None) -> bool:
    """A limit the market has not reached: a buy under it, a sell over it (never without both prices)."""
    if market is None or order.price is None:
        return False
    return order.price < market if order.side == "BUY" else order.price > market


class SimulatedVenue:
    """A venue with latency, a success probability, price slippage and an optional script of answers."""

    def __init__(
        self,
        *,
        name: str | None = None,
        latency_ms: int | None = None,
        success_probability: float | None = None,
        reject_share: float | None = None,
        max_slippage: Decimal | str | None = None,
        seed: str | None = None,
        script: str | None = None,
        script_scope: str | None = None,
        hang_after_fill: float | None = None,
        memory: VenueMemory | None = None,
        quotes: Callable[[VenueOrder], Decimal | None] | None = None,
    ) -> None:
        self.name = name or settings.VENUE_NAME
        self.latency = (latency_ms if latency_ms is not None else settings.VENUE_LATENCY_MS) / 1000
        self.success_probability = (
            success_probability if success_probability is not None else settings.VENUE_SUCCESS_PROBABILITY
        )
        self.reject_share = reject_share if reject_share is not None else settings.VENUE_REJECT_SHARE
        self.max_slippage = Decimal(str(max_slippage if max_slippage is not None else settings.VENUE_MAX_SLIPPAGE))
        self.seed = seed if seed is not None else (settings.VENUE_SEED or None)
        self.script = parse_script(script if script is not None else settings.VENUE_SCRIPT)
        self.script_scope = script_scope or settings.VENUE_SCRIPT_SCOPE
        if self.script_scope not in ("global", "order"):
            raise ValueError("VENUE_SCRIPT_SCOPE must be 'global' or 'order'")
        self.hang_after_fill = (
            hang_after_fill if hang_after_fill is not None else settings.VENUE_HANG_AFTER_FILL_SECONDS
        )
        self._memory = memory
        self._calls_seen = 0
        # Where the market is: the platform's latest prices (market.prices), unless a script gives its own.
        self.quotes = quotes or self.market_price

    @property
    def memory(self) -> VenueMemory:
        if self._memory is None:
            self._memory = venue_memory()
        return self._memory

    def _rng(self, order_id: str) -> random.Random:
        # Seeded: a function of (seed, order id, n-th call in this process for the order) so a test can
        # reproduce a run; unseeded: fresh entropy.
        self._calls_seen += 1
        if self.seed is None:
            return random.Random()  # noqa: S311 - a simulation, not cryptography
        material = f"{self.seed}:{order_id}:{self._calls_seen}".encode()
        return random.Random(int.from_bytes(hashlib.sha256(material).digest()[:8], "big"))  # noqa: S311

    def _scripted(self, order_id: str) -> str | None:
        if not self.script:
            return None
        digest = hashlib.sha256(",".join(self.script).encode()).hexdigest()[:12]
        counter = f"{digest}:{order_id}" if self.script_scope == "order" else digest
        index = self.memory.next_index(counter)
        return self.script[index] if index < len(self.script) else None

    def _random_outcome(self, rng: random.Random) -> str:
        if rng.random() < self.success_probability:
            return "ok"
        return "reject" if rng.random() < self.reject_share else "fail"

    def fill_price(self, order: VenueOrder, market: Decimal | None, rng: random.Random) -> Decimal:
        """Where the order fills: at the market's price (the ask for a buy, the bid for a sell; the order's own
        price where the instrument has none) moved against the order by up to max_slippage of itself, and
        never worse than the order's limit: a buy never above it, a sell never below it."""
        reference = market if market is not None else order.price
        assert reference is not None
        move = Decimal(str(round(abs(rng.uniform(-1.0, 1.0)), 6))) * self.max_slippage
        if order.side == "BUY":
            price = (reference * (1 + move)).quantize(PRICE_PLACES, ROUND_HALF_EVEN)
            return price if order.price is None else min(order.price, price)
        price = (reference * (1 - move)).quantize(PRICE_PLACES, ROUND_HALF_EVEN)
        return price if order.price is None else max(order.price, price)

    @staticmethod
    def market_price(order: VenueOrder) -> Decimal | None:
        """The price the order would trade at now: the ask for a buy, the bid for a sell, else the last."""
        from market.prices import latest

        return _quoted(latest([order.symbol]).get(order.symbol), order.side)

    def fillable(self, orders: Sequence[VenueOrder]) -> set[str]:
        """Of orders resting here, the ids of those the market may fill now: a limit the market has reached
        (execute's own rule, _short_of), or no market price to compare with. The others would be answered not
        marketable: the platform does not call for them (execution._fillable_split). With a script or
        quotes of its own, every order (each call's answer is theirs to give)."""
        if self.script or self.quotes is not SimulatedVenue.market_price:
            return {order.order_id for order in orders}
        from market.prices import latest

        quotes = latest(sorted({order.symbol for order in orders}))
        return {
            order.order_id for order in orders if not _short_of(order, _quoted(quotes.get(order.symbol), order.side))
        }

    def cancel(self, order_id: str) -> bool:
        """The order is cancelled here unless this venue has filled it: a later call for it is rejected."""
        self.memory.mark("cancelled", order_id)
        return self.memory.recall(order_id) is None

    def replace(self, order: VenueOrder) -> bool:
        """This venue holds no order between calls (it fills or answers not marketable at each call, and the
        next call sends the order's current terms): too late only once it has filled the order."""
        return self.memory.recall(order.order_id) is None

    def execute(self, order: VenueOrder, *, timeout: float) -> Execution:
        known, cancelled = self.memory.call_opened(order.order_id)
        if known is not None:
            # Idempotent by order id: a repeated order gets the execution it already has.
            time.sleep(min(self.latency, timeout))
            return known
        if cancelled:
            raise VenueRejected("Order cancelled at the venue")
        rng = self._rng(order.order_id)
        outcome = self._scripted(order.order_id) or self._random_outcome(rng)
        if outcome == "timeout" or self.latency > timeout:
            # Decided before anything is filled: a timed-out call left nothing at the venue.
            time.sleep(timeout)
            raise VenueTimeout(f"Venue did not answer within {timeout:g}s")
        time.sleep(self.latency)
        if outcome == "fail":
            raise VenueUnavailable("Venue unavailable")
        if outcome == "reject":
            raise VenueRejected("Rejected by venue")
        market = self.quotes(order)
        if market is None and order.price is None:
            raise VenueNotMarketable("No market price for a market order")
        if _short_of(order, market):
            raise VenueNotMarketable(f"Not marketable: {order.side} limit {order.price}, market {market}", market)
        execution = Execution(
            venue=self.name,
            venue_execution_id=f"SIM-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
            quantity=order.quantity,
            price=self.fill_price(order, market, rng),
        )
        execution = self.memory.remember(order.order_id, execution)
        if self.hang_after_fill:
            logger.warning("venue drill: hanging %ss after filling order %s", self.hang_after_fill, order.order_id)
            time.sleep(self.hang_after_fill)
        return execution
