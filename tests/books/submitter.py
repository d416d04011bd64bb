"""A separate process that submits orders in books through the service when a go-file appears (the books'
race tests), and the one place the tests build a request in a book.

Run as: python -m tests.books.submitter USERNAME COUNT PREFIX GO_FILE BOOK[,BOOK...]: order i goes in the
i-th book of the list, round robin. Prints one JSON line per order.
"""

from __future__ import annotations

import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any


def order_request(*, book: str, **fields: Any) -> Any:
    """An OrderRequest in `book` (its code), as the API's input serializer gives it: the request names the
    book by code (POST /orders' "book")."""
    from orders.submission import OrderRequest

    return OrderRequest(book=book, **fields)


def main() -> None:
    username, count, prefix, go_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    books = sys.argv[5].split(",")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
    import django

    django.setup()
    from django.db import connection

    from accounts.models import User
    from orders.submission import order_submit

    user = User.objects.get(username=username)
    connection.ensure_connection()
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not go_file.exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go signal")
        time.sleep(0.001)
    for i in range(count):
        book = books[i % len(books)]
        request = order_request(
            book=book,
            symbol="CONC",  # a test instrument: valued at the order's price, so 10 x 100 counts 1,000
            side="BUY",
            quantity=Decimal(10),
            price=Decimal(100),
            client_order_id=f"{prefix}-{i}",
        )
        order, _ = order_submit(user=user, request=request)
        print(json.dumps({"order_id": str(order.pk), "status": order.status, "book": book}), flush=True)
    connection.close()


if __name__ == "__main__":
    main()
