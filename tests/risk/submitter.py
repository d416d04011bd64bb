"""A separate process that submits orders through the service when a go-file appears (concurrency tests).

Run as: python -m tests.risk.submitter USERNAME COUNT PREFIX GO_FILE. Prints one JSON line per order.
"""

from __future__ import annotations

import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path


def main() -> None:
    username, count, prefix, go_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "itirp.settings")
    import django

    django.setup()
    from django.db import connection

    from accounts.models import User
    from orders.submission import OrderRequest, order_submit

    user = User.objects.get(username=username)
    connection.ensure_connection()
    print("ready", flush=True)
    deadline = time.monotonic() + 60
    while not go_file.exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go signal")
        time.sleep(0.001)
    for i in range(count):
        request = OrderRequest(
            symbol="CONC", side="BUY", quantity=Decimal(10), price=Decimal(100), client_order_id=f"{prefix}-{i}"
        )
        order, decision = order_submit(user=user, request=request)
        print(json.dumps({"order_id": str(order.pk), "status": order.status}), flush=True)
    connection.close()


if __name__ == "__main__":
    main()
