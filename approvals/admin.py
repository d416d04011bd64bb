"""Back office: the pending changes of the risk controls, approved or rejected by a second risk manager with a
reason and a confirmation step (through risk.four_eyes, as the API)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.permissions import signed_in_user
from approvals import selectors
from approvals.models import ChangeKind, ChangeStatus, PendingChange
from core.exceptions import ItirpError
from risk import four_eyes  # deciding applies risk changes: the risk domain's use case

REASON_REQUIRED = "A reason is required: it is kept in the audit trail."


class DecisionForm(forms.Form):
    change_id = forms.UUIDField(widget=forms.HiddenInput)
    decision = forms.ChoiceField(choices=[("approve", "approve"), ("reject", "reject")], widget=forms.HiddenInput)
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 40, "placeholder": "Why? (kept in the audit trail)"}),
        error_messages={"required": REASON_REQUIRED},
    )
    confirm = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(REASON_REQUIRED)
        return reason


def describe(change: PendingChange) -> list[str]:
    """The change in words: each limit from its value to the new one, or the state left and the one asked."""
    data = change.change
    if change.kind == ChangeKind.STATE_RELEASE:
        via = " (kill switch OFF)" if data.get("via") == "kill_switch" else ""
        return [f"Trading state: {data.get('previous', 'HALTED')} → {data.get('state')}{via}"]
    old = data.get("old", {})
    return [
        f"{_label(name)}: {_value(name, old.get(name))} → {_value(name, new)}"
        for name, new in data.get("limits", {}).items()
    ]


def _label(name: str) -> str:
    return name.replace("_pct", " (%)").replace("_", " ").capitalize()


def _value(name: str, value: Any) -> str:
    """A limit as people read it: money with separators and two decimals, a quantity as given, none if unset."""
    if value is None:
        return "none (inherits)"
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    if name in ("max_order_quantity", "price_collar_pct"):
        return f"{number.normalize():,f}"
    return f"{number:,.2f} {settings.REPORTING_CURRENCY}"


def pending_view(request: HttpRequest, *, admin_site: Any) -> HttpResponse:
    user = signed_in_user(request)
    if not four_eyes.may_list(user):
        raise PermissionDenied
    confirming: DecisionForm | None = None
    failed: dict[str, DecisionForm] = {}
    if request.method == "POST":
        form = DecisionForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            if data["confirm"] != "yes":
                confirming = form
            else:
                decide = four_eyes.change_approve if data["decision"] == "approve" else four_eyes.change_reject
                try:
                    change = decide(actor=user, change_id=data["change_id"], reason=data["reason"])
                except ItirpError as exc:
                    messages.error(request, exc.message)
                else:
                    done = "approved and applied" if change.status == ChangeStatus.APPROVED else "rejected"
                    messages.success(request, f"Change to {change.scope} {done}.")
                return HttpResponseRedirect(reverse("admin:approvals_pending"))
        else:
            failed[str(request.POST.get("change_id", ""))] = form
    pending = [c for c in selectors.changes_list(status=ChangeStatus.PENDING) if four_eyes.visible(user, c)]
    rows: list[dict[str, Any]] = [
        {
            "change": c,
            "lines": describe(c),
            "can_decide": four_eyes.may_decide(user, c),
            "own": c.requested_by_id == user.pk,
            "form": failed.get(str(c.change_id)),
        }
        for c in pending
    ]
    decided = [
        c for c in selectors.changes_list().exclude(status=ChangeStatus.PENDING)[:50] if four_eyes.visible(user, c)
    ]
    confirm_id = confirming.cleaned_data["change_id"] if confirming else None
    confirm_change = next((r for r in rows if r["change"].change_id == confirm_id), None)
    context = {
        **admin_site.each_context(request),
        "title": "Pending approvals",
        "rows": rows,
        "decided": [{"change": c, "lines": describe(c)} for c in decided[:20]],
        "confirming": confirming,
        "confirm_row": confirm_change,
    }
    return TemplateResponse(request, "admin/approvals/pending.html", context)


@admin.register(PendingChange)
class PendingChangeAdmin(admin.ModelAdmin):
    """No model pages of its own: the changelist is the pending-approvals page."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return four_eyes.may_list(signed_in_user(request)) if request.user.is_authenticated else False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:approvals_pending"))

    def get_urls(self) -> list[Any]:
        site = self.admin_site
        return [
            path("pending/", site.admin_view(lambda r: pending_view(r, admin_site=site)), name="approvals_pending"),
            *super().get_urls(),
        ]
