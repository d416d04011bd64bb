"""Celery tasks of the orders app: thin wrappers that take ids and call services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="orders.execute", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def order_execute(
    order_id: str,
    correlation_id: str | None = None,
    resume: bool = False,
    with_ids: list[str] | None = None,
    wake: bool = False,
    attempt: int | None = None,
    recheck: bool = False,
) -> str:
    """One execution attempt (of a group: `with_ids`, the rest of the order's submission batch; `wake`, a
    wake-up whose group takes the orders waiting, execution.wake_claim; `attempt`, the attempt it is for,
    skipped once that has run; `recheck`, orders resting at the venue checked again); the service queues the
    next one after its backoff when a retry is due."""
    from orders import execution

    outcome = execution.order_execute(
        order_id=order_id,
        correlation_id=correlation_id,
        resume=resume,
        with_ids=with_ids or (),
        wake=wake,
        attempt=attempt,
        recheck=recheck,
    )
    return outcome.status


@shared_task(name="orders.sweep_stuck", acks_late=True, ignore_result=True)
def orders_sweep_stuck() -> int:
    """Beat: re-queue orders left APPROVED or EXECUTING past ORDER_STUCK_AFTER_SECONDS."""
    from orders import execution

    return len(execution.orders_sweep())


@shared_task(name="orders.expire_day_orders", acks_late=True, ignore_result=True)
def orders_expire_day() -> int:
    """Beat: DAY orders of earlier UTC days still waiting end EXPIRED."""
    from orders import execution

    return len(execution.orders_expire())
