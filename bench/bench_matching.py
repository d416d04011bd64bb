"""Micro benchmark of the internal venue's matching core (orders/matching.py), in process, no Django.

    .venv/bin/python bench/bench_matching.py                    # 100k messages over a book of ~1k orders
    .venv/bin/python bench/bench_matching.py --messages 1000000 --instruments 10   # issue 16's mixed stream

A seeded random stream (so every run is the same stream): limit orders around the mid (most rest, some
cross), market orders with a collar bound, IOC/FOK, cancels and replaces of resting orders. Each instrument's
book is first filled to `--resting` orders; the stream then keeps it roughly there. Messages are built before
the clock starts, so the figure is the book's own cost. Then the cost of rebuilding a book from its rows.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from decimal import Decimal
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from orders.matching import Incoming, OrderBook, Resting  # noqa: E402 - after the path is set

TICK = Decimal("0.01")
MID = 10_000  # in ticks: 100.00
PARTIES = [(f"u{i}", f"B{i % 7}") for i in range(50)]


def price(ticks: int) -> Decimal:
    return Decimal(ticks) * TICK


class Stream:
    """Messages for one instrument; remembers which of its orders may still rest, to cancel and replace them."""

    def __init__(self, symbol: str, rng: random.Random, seq: list[int]) -> None:
        self.symbol, self.rng, self.seq = symbol, rng, seq
        self.live: list[str] = []
        self.count = 0

    def next_seq(self) -> int:
        self.seq[0] += 1
        return self.seq[0]

    def limit(self, *, resting_only: bool = False) -> Incoming:
        rng = self.rng
        self.count += 1
        order_id = f"{self.symbol}-{self.count}"
        side = "BUY" if rng.random() < 0.5 else "SELL"
        # mostly away from the mid (they rest); about one in five crosses by a few ticks
        offset = rng.randint(1, 50) if resting_only or rng.random() < 0.8 else -rng.randint(0, 5)
        ticks = MID - offset if side == "BUY" else MID + offset
        owner, book = rng.choice(PARTIES)
        tif = "GTC" if resting_only else rng.choices(["DAY", "GTC", "IOC", "FOK"], [45, 45, 5, 5])[0]
        self.live.append(order_id)
        quantity = Decimal(rng.randint(1, 20) * 10)
        return Incoming(order_id, side, quantity, price(ticks), owner, book, tif, self.next_seq())

    def message(self, size: int, target: int) -> tuple[str, Any]:
        """The next message, for a book now holding `size` orders: more cancels above `target`, fewer below."""
        rng = self.rng
        roll = rng.random()
        if size > target * 1.1:
            roll = 0.62 + roll * 0.38
        elif size < target * 0.9:
            roll = roll * 0.62
        if roll < 0.55 or not self.live:
            return "submit", self.limit()
        if roll < 0.62:
            self.count += 1
            owner, book = rng.choice(PARTIES)
            side = "BUY" if rng.random() < 0.5 else "SELL"
            bound = price(MID + 30 if side == "BUY" else MID - 30)
            quantity = Decimal(rng.randint(1, 10) * 10)
            return "submit", Incoming(
                f"{self.symbol}-{self.count}", side, quantity, None, owner, book, "IOC", self.next_seq(), bound
            )
        # cancel or replace a recent order: it may have traded away already (then the book answers None)
        index = len(self.live) - 1 - min(int(rng.expovariate(0.01)), len(self.live) - 1)
        order_id = self.live[index]
        self.live[index] = self.live[-1]
        self.live.pop()
        if roll < 0.9:
            return "cancel", order_id
        self.live.append(order_id)
        return "replace", (order_id, Decimal(rng.randint(1, 20) * 10), self.next_seq())


def apply(book: OrderBook, kind: str, args: Any) -> Any:
    if kind == "submit":
        return book.submit(args)
    if kind == "cancel":
        return book.cancel(args)
    order_id, quantity, seq = args
    return book.replace(order_id, quantity=quantity, seq=seq)


def throughput(messages: int, instruments: int, resting: int, seed: int) -> None:
    rng = random.Random(seed)
    seq = [0]
    streams = [Stream(f"S{i}", rng, seq) for i in range(instruments)]
    books = [OrderBook(stream.symbol) for stream in streams]
    for stream, book in zip(streams, books, strict=True):
        while len(book) < resting:
            book.submit(stream.limit(resting_only=True))
    # The stream depends on the books' sizes, so it is made by playing it once on these books; the timed run
    # plays it again on books rebuilt from the same starting rows (the core is deterministic: same trades).
    start_rows = [book.orders() for book in books]
    plan = []
    for _ in range(messages):
        i = rng.randrange(instruments)
        kind, args = streams[i].message(len(books[i]), resting)
        apply(books[i], kind, args)
        plan.append((i, kind, args))
    books = [OrderBook(stream.symbol, rows) for stream, rows in zip(streams, start_rows, strict=True)]
    plan_books = [(books[i], kind, args) for i, kind, args in plan]
    kinds: dict[str, int] = {}
    for _, kind, _ in plan:
        kinds[kind] = kinds.get(kind, 0) + 1
    trades = misses = 0
    # The plan's million objects are the benchmark's, not the venue's: kept out of the collector's scans, which
    # would otherwise charge the book for walking them (a venue process holds its books, not its input).
    gc.collect()
    gc.freeze()
    start, cpu_start = time.perf_counter(), time.process_time()
    for book, kind, args in plan_books:
        result = apply(book, kind, args)
        if result is None:
            misses += 1  # a cancel or replace of an order that had traded away
        elif kind != "cancel":
            trades += len(result.trades)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    sizes = [len(book) for book in books]
    print(
        f"throughput: {messages:,} messages over {instruments} instrument(s) of ~{resting:,} resting orders "
        f"({', '.join(f'{k} {v:,}' for k, v in sorted(kinds.items()))}): {elapsed:.2f} s, "
        f"{messages / elapsed:,.0f} messages/s, {elapsed / messages * 1e6:.1f} us each "
        f"(CPU {cpu:.2f} s: {messages / cpu:,.0f} messages/s per core; the wall figure drops on a shared machine); "
        f"{trades:,} trades, {misses:,} cancels/replaces of orders no longer there; books end with {min(sizes):,}-{max(sizes):,} orders"
    )


def rebuild(size: int, seed: int) -> None:
    rng = random.Random(seed)
    book = OrderBook("R")
    stream = Stream("R", rng, [0])
    while len(book) < size:
        book.submit(stream.limit(resting_only=True))
    rows: list[Resting] = book.orders()
    rng.shuffle(rows)  # as a database hands them back: any order
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        rebuilt = OrderBook("R", rows)
        runs.append(time.perf_counter() - start)
    assert rebuilt.orders() == book.orders()
    best = min(runs)
    print(f"rebuild: {size:,} resting orders in {best * 1e3:.1f} ms (best of 5), {size / best:,.0f} orders/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--instruments", type=int, default=1)
    parser.add_argument("--resting", type=int, default=1_000, help="resting orders per book before the stream")
    parser.add_argument("--rebuild", type=int, nargs="*", default=[1_000, 10_000], help="book sizes to rebuild")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    throughput(args.messages, args.instruments, args.resting, args.seed)
    for size in args.rebuild:
        rebuild(size, args.seed)


if __name__ == "__main__":
    main()
