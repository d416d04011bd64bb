"""Compliance back office: the event browser, strictly read-only and fast on millions of rows, with trails
and exports (audit/admin_views.py)."""

from __future__ import annotations

import calendar
import datetime as dt
import json
import uuid
from functools import cached_property
from typing import Any, ClassVar, cast

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import Max, Min, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit import (
    admin_schedules,  # noqa: F401 - beat's admin pages: superusers only, audit schedules recorded
    admin_views,
    presentation,
)
from audit.models import Event, EventType
from audit.presentation import parse_moment
from audit.selectors import by_client_order_id, client_order_id_q, table_estimate
from core.admin import ReadOnlyAdminMixin

# A filtered selection is counted up to this many rows; past it the page says "more than".
COUNT_CAP = 10_000


class EstimatedCountPaginator(Paginator):
    """A paginator that never runs a full COUNT(*): the whole table is estimated from pg_class, a filtered
    selection is counted only up to COUNT_CAP rows (a bounded index scan)."""

    count_label = ""

    @cached_property
    def count(self) -> int:
        qs = cast("QuerySet[Event]", self.object_list)  # the change list pages a QuerySet
        capped = qs.order_by()[: COUNT_CAP + 1].count()
        if capped <= COUNT_CAP:
            self.count_label = f"{capped:,} event{'' if capped == 1 else 's'}"
            return capped
        if not qs.query.where:
            estimate = table_estimate(qs.model)
            if estimate and estimate > COUNT_CAP:
                self.count_label = f"about {estimate:,} events"
                return estimate
        self.count_label = f"more than {COUNT_CAP:,} events"
        return capped


class InputFilter(admin.SimpleListFilter):
    """A text box filter on an indexed column (exact match): no SELECT DISTINCT over millions of rows."""

    template = "admin/audit/input_filter.html"
    field = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("", "")]  # a filter with no lookups is not shown at all

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = (self.value() or "").strip()
        return queryset.filter(**{self.field: self.normalise(value)}) if value else queryset

    def normalise(self, value: str) -> str:
        return value

    def choices(self, changelist: Any) -> Any:
        hidden = [
            (key, value)
            for key, values in changelist.filter_params.items()
            if key != self.parameter_name
            for value in values
        ]
        yield {"value": self.value() or "", "hidden": hidden, "name": self.parameter_name}


class UserFilter(InputFilter):
    title = "user (exact username)"
    parameter_name = "user"
    field = "actor_username"


class SymbolFilter(InputFilter):
    title = "symbol"
    parameter_name = "symbol"
    field = "symbol"

    def normalise(self, value: str) -> str:
        return value.upper()


class ClientOrderIdFilter(InputFilter):
    """The events that carry a client order id and every event of the orders made with it (refused attempts
    included): selectors.by_client_order_id, on event_client_order_idx."""

    title = "client order id"
    parameter_name = "client_order_id"

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = (self.value() or "").strip()
        return by_client_order_id(queryset, value) if value else queryset


class TimeRangeFilter(admin.ListFilter):
    """From (inclusive) and to (exclusive), to the second, in UTC: on event_ts_idx. A bad value is said
    beside the box and selects nothing (never a silent "all events")."""

    title = "time range (UTC)"
    template = "admin/audit/range_filter.html"
    parameters = ("since", "until")

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        for name in self.parameters:
            if name in params:
                self.used_parameters[name] = params.pop(name)[-1]
        self.bounds: dict[str, dt.datetime] = {}
        self.errors: list[str] = []
        for name in self.parameters:
            raw = str(self.used_parameters.get(name) or "").strip()
            if not raw:
                continue
            moment = parse_moment(raw)
            if moment is None:
                self.errors.append(f"{'From' if name == 'since' else 'To'}: {raw[:40]!r} is not a date and time")
            else:
                self.bounds[name] = moment
        if "since" in self.bounds and "until" in self.bounds and self.bounds["since"] >= self.bounds["until"]:
            self.errors.append("From must be before To")

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return list(self.parameters)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.errors:
            return queryset.none()
        if "since" in self.bounds:
            queryset = queryset.filter(timestamp__gte=self.bounds["since"])
        if "until" in self.bounds:
            queryset = queryset.filter(timestamp__lt=self.bounds["until"])
        return queryset

    def choices(self, changelist: Any) -> Any:
        hidden = [
            (key, value)
            for key, values in changelist.filter_params.items()
            if key not in self.parameters
            for value in values
        ]

        def shown(name: str) -> str:
            if name in self.bounds:  # as given, so that applying it again selects the same events
                moment = self.bounds[name]
                return moment.strftime("%Y-%m-%d %H:%M:%S" + (".%f" if moment.microsecond else ""))
            return str(self.used_parameters.get(name, ""))

        yield {"since": shown("since"), "until": shown("until"), "hidden": hidden, "errors": self.errors}


class EventGroupFilter(admin.SimpleListFilter):
    title = "event group"
    parameter_name = "group"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(group, group) for group, _ in presentation.grouped_types()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(event_type__in=presentation.types_of_group(value)) if value else queryset


class EventTypeFilter(admin.SimpleListFilter):
    """One type, chosen in a select grouped like the group filter (fifty links were a wall)."""

    title = "event type"
    parameter_name = "event_type"
    template = "admin/audit/type_filter.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(EventType.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(event_type=value) if value in EventType.values else queryset

    def choices(self, changelist: Any) -> Any:
        hidden = [
            (key, value)
            for key, values in changelist.filter_params.items()
            if key != self.parameter_name
            for value in values
        ]
        yield {
            "value": self.value() or "",
            "groups": presentation.grouped_types(),
            "hidden": hidden,
            "name": self.parameter_name,
        }


def order_id_range(prefix: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The short id the list shows (8 hex digits, or any 4 to 32): every UUID that starts with it lies
    between these two, so a prefix is a range scan on the order_id index."""
    digits = prefix.replace("-", "").lower()
    if not 4 <= len(digits) <= 32 or any(c not in "0123456789abcdef" for c in digits):
        return None
    return uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))


class EventChangeList(ChangeList):
    def date_hierarchy_fast(self) -> dict[str, Any]:
        """The date drill-down from MIN/MAX of the (indexed) timestamp and the calendar, instead of
        Django's SELECT DISTINCT date_trunc(...) over every row of the period."""
        field = self.date_hierarchy
        year, month, day = (self.params.get(f"{field}__{part}") for part in ("year", "month", "day"))

        def link(filters: dict[str, Any]) -> str:
            return self.get_query_string(filters, [f"{field}__"])

        if year and month and day:
            date = dt.date(int(year), int(month), int(day))
            return {
                "show": True,
                "back": {"link": link({f"{field}__year": year, f"{field}__month": month}), "title": f"{date:%B %Y}"},
                "choices": [{"title": f"{date:%d %B %Y}"}],
            }
        bounds = self.queryset.aggregate(first=Min(field), last=Max(field))
        first, last = bounds["first"], bounds["last"]
        if first is None:
            return {"show": False}
        if year and month:
            y, m = int(year), int(month)
            month_days = range(1, calendar.monthrange(y, m)[1] + 1)
            days = [d for d in month_days if first.date() <= dt.date(y, m, d) <= last.date()]
            return {
                "show": True,
                "back": {"link": link({f"{field}__year": year}), "title": year},
                "choices": [
                    {
                        "link": link({f"{field}__year": year, f"{field}__month": month, f"{field}__day": str(d)}),
                        "title": f"{dt.date(y, m, d):%d %b}",
                    }
                    for d in days
                ],
            }
        if year:
            y = int(year)
            months = [m for m in range(1, 13) if (first.year, first.month) <= (y, m) <= (last.year, last.month)]
            return {
                "show": True,
                "back": {"link": link({}), "title": "All dates"},
                "choices": [
                    {
                        "link": link({f"{field}__year": year, f"{field}__month": str(m)}),
                        "title": f"{calendar.month_name[m]} {y}",
                    }
                    for m in months
                ],
            }
        return {
            "show": True,
            "back": None,
            "choices": [
                {"link": link({f"{field}__year": str(y)}), "title": str(y)} for y in range(first.year, last.year + 1)
            ],
        }


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only for everyone: no add, change or delete, no bulk actions (the table also refuses UPDATE,
    DELETE and TRUNCATE itself). Newest first; every filter is backed by an index."""

    list_display = ["when", "event_type", "actor", "symbol", "trail_link", "summary"]
    list_filter = [TimeRangeFilter, EventGroupFilter, EventTypeFilter, UserFilter, ClientOrderIdFilter, SymbolFilter]
    date_hierarchy = "timestamp"
    search_fields = ["=correlation_id"]  # the search box; the search itself is get_search_results
    search_help_text = (
        "A client order id, an order id or its first characters (the short id the list shows), a correlation "
        "or event id (UUID), or an event sequence number."
    )
    ordering = ["-timestamp", "-sequence"]
    sortable_by = []
    list_per_page = 50
    list_max_show_all = 0
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = None
    fields: ClassVar[tuple[str, ...]] = (
        "sequence",
        "event_id",
        "event_type",
        "timestamp_exact",
        "actor_username",
        "actor_id",
        "address",
        "correlation_link",
        "causation_id",
        "order_link",
        "symbol",
        "payload_pretty",
    )
    readonly_fields = fields

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return EventChangeList

    @admin.display(description="time (UTC)")
    def when(self, obj: Event) -> SafeString:
        # date over time, to the millisecond (the detail page has the microseconds): a narrow column
        stamp = obj.timestamp.astimezone(dt.UTC)
        return format_html(
            '<span class="when">{}<br>{}</span>',
            f"{stamp:%Y-%m-%d}",
            f"{stamp:%H:%M:%S}.{stamp.microsecond // 1000:03d}",
        )

    @admin.display(description="actor")
    def actor(self, obj: Event) -> str:
        return obj.actor_username or "–"

    @admin.display(description="trail")
    def trail_link(self, obj: Event) -> str:
        """The order's short id (searchable as a prefix), else the request's; each opens its trail."""
        return self.order_link(obj) if obj.order_id else self.correlation_link(obj)

    @admin.display(description="timestamp (UTC)")
    def timestamp_exact(self, obj: Event) -> str:
        return obj.timestamp.isoformat()

    @admin.display(description="order")
    def order_link(self, obj: Event) -> str:
        if not obj.order_id:
            return "–"
        url = reverse("admin:audit_event_trail") + f"?order_id={obj.order_id}"
        return format_html('<a href="{}" title="trail of this order">{}</a>', url, str(obj.order_id)[:8] + "…")

    @admin.display(description="correlation")
    def correlation_link(self, obj: Event) -> str:
        url = reverse("admin:audit_event_trail") + f"?correlation_id={obj.correlation_id}"
        return format_html(
            '<a href="{}" title="trail of this request (correlation id)" class="request-link">{}</a>',
            url,
            str(obj.correlation_id)[:8] + "…",
        )

    @admin.display(description="details")
    def summary(self, obj: Event) -> str:
        return presentation.summary(obj.event_type, obj.payload if isinstance(obj.payload, dict) else {})

    @admin.display(description="payload")
    def payload_pretty(self, obj: Event) -> SafeString:
        payload = obj.payload if isinstance(obj.payload, dict) else {"value": obj.payload}
        sentences = presentation.rejection_sentences(payload)
        rejected = (
            format_html(
                '<ul class="rejection">{}</ul>',
                format_html_join("", "<li>{}</li>", ((sentence,) for sentence in sentences)),
            )
            if sentences
            else ""
        )
        raw = json.dumps(obj.payload, default=str, indent=2, sort_keys=True)
        return format_html(
            '{}{}<details class="payload-raw"><summary>as stored (JSON)</summary><pre>{}</pre></details>',
            rejected,
            presentation.payload_table(payload),
            raw,
        )

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        # Exact matches on indexed columns only: icontains over millions of rows would scan them all.
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.isdigit() and len(term) < 8:
            return queryset.filter(sequence=int(term)), False
        try:
            uid = uuid.UUID(term)
        except ValueError:
            pass
        else:
            return (
                queryset.filter(order_id=uid) | queryset.filter(correlation_id=uid) | queryset.filter(event_id=uid),
                False,
            )
        # Not a UUID: a client order id (any text), or the first characters of an order id.
        found = client_order_id_q(term[:64])
        prefix = order_id_range(term.rstrip("…"))
        if prefix is not None:
            found |= Q(order_id__gte=prefix[0], order_id__lte=prefix[1])
        if term.isdigit():
            found |= Q(sequence=int(term))
        return queryset.filter(found), False

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_export": request.user.has_perm("audit.export_audit"),
            "integrity": admin_views.integrity_status(),
        }
        return super().changelist_view(request, extra_context)

    def get_urls(self) -> list[Any]:
        site = self.admin_site
        return [
            path(
                "trail/",
                site.admin_view(lambda r: admin_views.trail_view(r, model_admin=self)),
                name="audit_event_trail",
            ),
            path(
                "report/",
                site.admin_view(lambda r: admin_views.report_view(r, model_admin=self)),
                name="audit_event_report",
            ),
            path(
                "export/",
                site.admin_view(lambda r: admin_views.export_view(r, model_admin=self)),
                name="audit_event_export",
            ),
            *super().get_urls(),
        ]
