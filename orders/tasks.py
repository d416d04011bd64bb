"""Celery tasks of the orders app: thin wrappers that take ids and call services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="orders.execute", acks_late=True, reject_on_worker_lost=True)
def order_execute(order_id: str, correlation_id: str | None = None) -> None:
    from orders import execution

    execution.order_execute(order_id=order_id, correlation_id=correlation_id)
