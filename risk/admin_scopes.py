"""Back-office pages by scope: limits per desk, book, trader and symbol; trading states; who holds which grant.

Every page is limited by risk.admin_access: a risk manager sees and changes only the desks granted to them
(and their books); compliance sees everything read-only. Writes go through the same services as the API.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from guardian.shortcuts import get_users_with_perms

from accounts.models import User
from accounts.permissions import signed_in_user
from approvals.models import ChangeKind, ChangeStatus, PendingChange
from books.models import Book, Desk
from core.exceptions import InvalidInput
from orders import services as order_services
from orders.models import OrderStatus
from risk import access, admin_access, services
from risk.admin_views import below_usage, below_usage_token, scope_limits_for, usage
from risk.models import FIRM_STATE_ID, LimitScope, RiskLimits, RiskState, ScopeState, TradingState
from risk.scopes import FIRM, Scope, ScopeError
from risk.selectors import scope_usage

ZERO = Decimal(0)
SCOPE_LIMIT_FIELDS = (
    "max_order_quantity",
    "max_order_value",
    "max_position_size",
    "max_daily_volume",
    "max_net_exposure",
    "max_gross_exposure",
    "max_daily_loss",
    "price_collar_pct",
    "max_var",
)
LABELS = {
    "max_order_quantity": "Max order quantity",
    "max_order_value": "Max order value",
    "max_position_size": "Max position size",
    "max_daily_volume": "Max daily volume",
    "max_net_exposure": "Max net exposure",
    "max_gross_exposure": "Max gross exposure",
    "max_daily_loss": "Max daily loss",
    "price_collar_pct": "Price collar (%)",
    "max_var": "Max VaR (checked every minute)",
}
REASON_REQUIRED = "A reason is required: it is kept in the audit trail."


def _scope_or_404(text: str) -> Scope:
    try:
        scope = Scope.parse(text)
    except ScopeError as exc:
        raise Http404(str(exc)) from exc
    if scope.kind == "firm":
        raise Http404("The firm's limits have their own page.")
    return scope


def scope_rows(scope: Scope, limits: RiskLimits | None) -> list[dict[str, Any]]:
    """Each limit of a scope: its value (None inherits) and, for a measured one that is set, its usage bar."""
    used = scope_usage(scope)
    rows = []
    for name in SCOPE_LIMIT_FIELDS:
        value = getattr(limits, name) if limits else None
        bar = usage(used[name], value) if value is not None and name in used else None
        rows.append({"name": name, "label": LABELS[name], "value": value, "used": used.get(name), "bar": bar})
    return rows


def scope_limits_list_view(request: HttpRequest, *, admin_site: Any) -> HttpResponse:
    user = signed_in_user(request)
    if not user.has_perm("risk.view_risk_metrics"):
        raise PermissionDenied
    scopes: list[Scope] = []
    for desk in admin_access.desks_with_limits_visible(user).prefetch_related("books"):  # each desk, its books
        scopes += [Scope("desk", desk.code), *(Scope("book", b.code) for b in desk.books.all())]
    others = RiskLimits.objects.filter(scope__in=[LimitScope.TRADER, LimitScope.SYMBOL]).order_by("scope", "scope_key")
    scopes += [s for s in (Scope(r.scope.lower(), r.scope_key) for r in others) if admin_access.scope_visible(user, s)]
    limits = {(r.scope, r.scope_key): r for r in RiskLimits.objects.exclude(scope=LimitScope.FIRM)}
    entries = []
    for scope in scopes:
        row = limits.get((scope.limit_scope, scope.key))
        set_rows = [r for r in scope_rows(scope, row) if r["value"] is not None]
        entries.append(
            {
                "scope": str(scope),
                "kind": scope.kind,
                "limits": set_rows,
                "editable": admin_access.scope_editable(user, scope),
            }
        )
    context = {
        **admin_site.each_context(request),
        "title": "Limits by scope",
        "entries": entries,
        "can_add": admin_access.scope_editable(user, FIRM),  # trader and symbol scopes: the same rule
    }
    return TemplateResponse(request, "admin/risk/scope_limits_list.html", context)


class ScopeLimitsForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.TextInput(attrs={"size": 60, "placeholder": "Why the change? (kept in the audit trail)"}),
        error_messages={"required": REASON_REQUIRED},
    )
    confirm = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in SCOPE_LIMIT_FIELDS:
            self.fields[name] = forms.DecimalField(
                label=LABELS[name],
                required=False,
                min_value=Decimal("0.00000001"),
                max_digits=24,
                decimal_places=8 if name == "max_order_quantity" else 4 if name == "price_collar_pct" else 2,
                widget=forms.NumberInput(attrs={"step": "any", "placeholder": "inherits"}),
            )
        self.order_fields([*SCOPE_LIMIT_FIELDS, "reason", "confirm"])

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(REASON_REQUIRED)
        return reason


def scope_limits_view(request: HttpRequest, scope_text: str, *, admin_site: Any) -> HttpResponse:
    user = signed_in_user(request)
    scope = _scope_or_404(scope_text)
    if not admin_access.scope_visible(user, scope):
        raise PermissionDenied
    try:
        access.scope_require(scope)
    except InvalidInput as exc:  # no such desk, book or trader
        raise Http404(str(exc)) from exc
    editable = admin_access.scope_editable(user, scope)
    limits = scope_limits_for(scope)
    current = {name: getattr(limits, name) if limits else None for name in SCOPE_LIMIT_FIELDS}
    form = ScopeLimitsForm(initial=current)
    below: list[dict[str, Any]] = []
    below_token = ""
    used = scope_usage(scope)
    if request.method == "POST":
        if not editable:
            raise PermissionDenied
        form = ScopeLimitsForm(request.POST)
        if form.is_valid():
            changes = {n: form.cleaned_data[n] for n in SCOPE_LIMIT_FIELDS if form.cleaned_data[n] != current[n]}
            below = below_usage(changes, dict(used), LABELS)
            below_token = below_usage_token(below)
            if not changes:
                form.add_error(None, "Nothing changed.")
            elif below and form.cleaned_data["confirm"] != below_token:
                pass  # the page shows the warning and its confirmation button (for exactly these values)
            else:
                try:
                    result = services.scope_limits_update(
                        actor=user, scope=scope, changes=changes, reason=form.cleaned_data["reason"]
                    )
                except InvalidInput as exc:
                    for field, message in getattr(exc, "fields", {}).items():
                        form.add_error(field if field in form.fields else None, message)
                else:
                    if isinstance(result, PendingChange):
                        messages.info(
                            request,
                            f"Waiting for approval: nothing changed yet; the new limits of {scope} apply when a "
                            "second risk manager approves them.",
                        )
                    else:
                        messages.success(request, f"Limits of {scope} saved.")
                    return HttpResponseRedirect(reverse("admin:risk_scope_limits", args=[str(scope)]))
    context = {
        **admin_site.each_context(request),
        "title": f"Limits of {scope}",
        "scope": str(scope),
        "form": form,
        "rows": scope_rows(scope, limits),
        "editable": editable,
        "below": below,
        "below_token": below_token,
        "limits": limits,
    }
    return TemplateResponse(request, "admin/risk/scope_limits_form.html", context)


def scope_limits_go_view(request: HttpRequest, *, admin_site: Any) -> HttpResponse:
    """The list page's "other scope" box: a trader or symbol scope typed in, opened as its form."""
    scope = _scope_or_404(request.GET.get("scope", ""))
    return HttpResponseRedirect(reverse("admin:risk_scope_limits", args=[str(scope)]))


class TradingStateForm(forms.Form):
    scope = forms.CharField(max_length=80, widget=forms.TextInput(attrs={"list": "itirp-scopes", "size": 30}))
    state = forms.ChoiceField(choices=TradingState.choices)
    reason = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": "Why? (kept in the audit trail)"}),
        error_messages={"required": REASON_REQUIRED},
    )
    confirm = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_scope(self) -> Scope:
        try:
            return Scope.parse(self.cleaned_data["scope"])
        except ScopeError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(REASON_REQUIRED)
        return reason


def trading_states_visible(user: User) -> list[dict[str, Any]]:
    """Every scope not ACTIVE that the user may see, the firm first."""
    rows = []
    firm = RiskState.objects.select_related("kill_switch_changed_by").filter(pk=FIRM_STATE_ID).first()
    if firm and firm.trading_state != TradingState.ACTIVE:
        rows.append(
            {
                "editable": admin_access.scope_editable(user, FIRM),
                "scope": "firm",
                "state": firm.trading_state,
                "reason": firm.kill_switch_reason,
                "changed_at": firm.kill_switch_changed_at,
                "changed_by": firm.kill_switch_changed_by,
            }
        )
    for s in ScopeState.objects.exclude(trading_state=TradingState.ACTIVE).select_related("changed_by"):
        try:
            scope = Scope.parse(s.scope)
        except ScopeError:
            continue
        if admin_access.scope_visible(user, scope):
            rows.append(
                {
                    "editable": admin_access.scope_editable(user, scope),
                    "scope": s.scope,
                    "state": s.trading_state,
                    "reason": s.reason,
                    "changed_at": s.changed_at,
                    "changed_by": s.changed_by,
                }
            )
    return rows


def trading_states_view(request: HttpRequest, *, admin_site: Any) -> HttpResponse:
    user = signed_in_user(request)
    if not user.has_perm("risk.view_risk_metrics"):
        raise PermissionDenied
    managed = admin_access.desks_managed(user)
    choices = [f"desk:{d.code}" for d in managed]
    choices += [f"book:{b.code}" for b in Book.objects.filter(desk__in=managed)]
    if admin_access.scope_editable(user, FIRM):
        choices.insert(0, "firm")
    can_set = bool(choices)
    initial = {"scope": request.GET.get("scope", ""), "state": request.GET.get("state", TradingState.HALTED)}
    form = TradingStateForm(initial=initial)
    confirming, to_cancel = False, 0
    if request.method == "POST":
        form = TradingStateForm(request.POST)
        if form.is_valid():
            scope, state = form.cleaned_data["scope"], form.cleaned_data["state"]
            if not admin_access.scope_editable(user, scope):
                raise PermissionDenied
            if state == TradingState.HALTED and form.cleaned_data["confirm"] != "yes":
                confirming = True
                to_cancel = order_services.scope_orders(scope).filter(status=OrderStatus.APPROVED).count()
            else:
                try:
                    written = order_services.scope_state_set(
                        actor=user, scope=scope, state=state, reason=form.cleaned_data["reason"]
                    )
                except InvalidInput as exc:  # a scope that names nothing (no such desk, book or trader)
                    form.add_error("scope", str(exc))
                else:
                    if isinstance(written, PendingChange):
                        messages.info(
                            request,
                            f"Waiting for approval: {scope} stays HALTED until a second risk manager approves "
                            f"setting it {state}.",
                        )
                        return HttpResponseRedirect(reverse("admin:risk_trading_states"))
                    _, cancelled = written
                    done = f"Trading state of {scope}: {state}."
                    messages.success(
                        request, done + (f" {len(cancelled)} open order(s) cancelled." if cancelled else "")
                    )
                    return HttpResponseRedirect(reverse("admin:risk_trading_states"))
    context = {
        **admin_site.each_context(request),
        "title": "Trading states",
        "states": trading_states_visible(user),
        "form": form,
        "confirming": confirming,
        "to_cancel": to_cancel,
        "scope_choices": choices,
        "can_set": can_set,
        "releases_pending": set(
            PendingChange.objects.filter(status=ChangeStatus.PENDING, kind=ChangeKind.STATE_RELEASE).values_list(
                "scope", flat=True
            )
        ),
    }
    return TemplateResponse(request, "admin/risk/trading_states.html", context)


def _holders(obj: Any, perms: dict[str, str]) -> dict[str, list[str]]:
    """Usernames holding each object permission (guardian's user grants), by label."""
    held: dict[Any, list[str]] = get_users_with_perms(
        obj, attach_perms=True, with_superusers=False, with_group_users=True
    )  # type: ignore[assignment]  # attach_perms=True answers {user: [codename, ...]}
    return {label: sorted(u.username for u, codes in held.items() if code in codes) for code, label in perms.items()}


def grants_view(request: HttpRequest, *, admin_site: Any) -> HttpResponse:
    user = signed_in_user(request)
    if not user.has_perm("risk.view_risk_metrics"):
        raise PermissionDenied
    desks: list[dict[str, Any]] = []
    for desk in admin_access.desks_visible(user).prefetch_related("books"):
        books = [{"book": b, **_holders(b, {"trade_book": "trade", "view_book": "view"})} for b in desk.books.all()]
        desks.append({"desk": desk, **_holders(desk, {"manage_desk": "manage", "view_desk": "view"}), "books": books})
    context = {
        **admin_site.each_context(request),
        "title": "Desks, books and grants",
        "desks": desks,
        # The Desk admin checks model-wide permissions: a desk's own grants do not open it.
        "desk_admin": admin_site.is_registered(Desk) and user.has_perm("books.view_desk"),
    }
    return TemplateResponse(request, "admin/risk/grants.html", context)
