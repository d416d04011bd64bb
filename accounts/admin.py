"""Users and roles back office: every write goes through accounts.services (create, role, deactivate),
so each has its event; role groups' permissions are edited here too, and recorded."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.contrib.auth import password_validation
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from guardian.conf import settings as guardian_settings

from accounts import services
from accounts.models import Role, User
from accounts.permissions import signed_in_user
from audit.models import EventType
from audit.services import event_record
from core import formats
from core.admin import superuser_only


class BackofficeLoginForm(AdminAuthenticationForm):
    """The admin sign-in: staff roles only (is_staff follows the role); every attempt is an event, as on the API."""

    def clean(self) -> dict[str, Any]:
        username = str(self.data.get("username", ""))[:150]
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            # user_cache is set when the password was right but the account may not use the back office
            services.login_failed_record(
                request=self.request, username=username, channel="admin", authenticated=self.user_cache
            )
            raise
        user = self.get_user()
        if user is None:  # a blank field: its "required" error stands, no sign-in was attempted (was a 500)
            return cleaned
        with transaction.atomic():
            event_record(
                event_type=EventType.LOGIN_SUCCEEDED, actor=user, payload={"role": user.role, "channel": "admin"}
            )
        return cleaned


admin.site.login_form = BackofficeLoginForm


class UserCreateForm(forms.ModelForm):
    """A new user: the password is checked by the configured validators; the row is made by user_create."""

    role = forms.ChoiceField(choices=Role.choices, initial=Role.TRADER)
    password1 = forms.CharField(label="Password", strip=False, widget=forms.PasswordInput)
    password2 = forms.CharField(label="Password again", strip=False, widget=forms.PasswordInput)

    class Meta:
        model = User
        fields = ["username", "first_name", "last_name", "email"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        p1, p2 = cleaned.get("password1"), cleaned.get("password2")
        if p1 and p2 and p1 != p2:
            self.add_error("password2", "The two passwords differ.")
        elif p1:
            probe = User(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
            try:
                password_validation.validate_password(p1, probe)
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class DeactivateForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": "Why? (kept in the audit trail)"}),
        error_messages={"required": "A reason is required: it is kept in the audit trail."},
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("A reason is required: it is kept in the audit trail.")
        return reason


class UserChangeForm(forms.ModelForm):
    """The names, e-mail, role and active flag are editable: each change goes through its service."""

    role = forms.ChoiceField(choices=Role.choices)
    deactivation_reason = forms.CharField(
        required=False, max_length=500, help_text="Kept in the audit trail when you deactivate the user."
    )

    class Meta:
        model = User
        fields = ["first_name", "last_name", "email", "role", "is_active"]
        help_texts = {"is_active": "Untick to deactivate: the user's sessions and tokens end at once."}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        deactivating = self.instance.is_active and not cleaned.get("is_active", True)
        if deactivating and not str(cleaned.get("deactivation_reason", "")).strip():
            self.add_error("deactivation_reason", "A reason is required to deactivate: it is kept in the audit trail.")
        return cleaned


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = ["username", "full_name", "role", "is_active", "is_staff", "email", "last_login_utc"]
    list_filter = ["role", "is_active"]
    search_fields = ["username", "email", "first_name", "last_name"]
    ordering = ["username"]
    actions = ["deactivate_users", "reactivate_users"]
    readonly_fields = [
        "username",
        "is_staff",
        "is_superuser",
        "group_list",
        "last_login",
        "date_joined",
    ]
    fieldsets = [
        (None, {"fields": ["username", "email", "first_name", "last_name"]}),
        (
            "Role and access",
            {"fields": ["role", "is_active", "deactivation_reason", "is_staff", "is_superuser", "group_list"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"fields": ["username", "first_name", "last_name", "email", "role", "password1", "password2"]})
    ]

    @admin.display(description="name", ordering="last_name")
    def full_name(self, obj: User) -> str:
        return obj.get_full_name() or "–"

    @admin.display(description="last login (UTC)", ordering="last_login")
    def last_login_utc(self, obj: User) -> str:
        return formats.utc_time(obj.last_login)

    @admin.display(description="groups")
    def group_list(self, obj: User) -> str:
        return ", ".join(g.name for g in obj.groups.all()) or "–"

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        # guardian's stand-in for anonymous visitors is no one's account: never listed, never edited
        return super().get_queryset(request).exclude(username=guardian_settings.ANONYMOUS_USER_NAME)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.readonly_fields

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = UserChangeForm if obj is not None else UserCreateForm
        kwargs["fields"] = None
        return super().get_form(request, obj, change=change, **kwargs)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Users are deactivated, never deleted: their events keep naming them.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        data, actor = form.cleaned_data, signed_in_user(request)
        if not change:
            created = services.user_create(
                actor=actor,
                username=data["username"],
                password=data["password1"],
                role=data["role"],
                email=data.get("email", ""),
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
            )
            obj.pk, obj._state.adding = created.pk, False
            return
        current = User.objects.get(pk=obj.pk)
        services.user_details_set(
            actor=actor, user=current, **{f: data.get(f, "") for f in services.USER_DETAIL_FIELDS}
        )
        if data["role"] != current.role:
            services.user_set_role(actor=actor, user=current, role=data["role"])
        if current.is_active and not data["is_active"]:
            if current.pk == actor.pk:
                raise PermissionDenied("You cannot deactivate yourself.")
            services.user_deactivate(actor=actor, user=current, reason=data.get("deactivation_reason", ""))
        elif not current.is_active and data["is_active"]:
            services.user_reactivate(actor=actor, user=current)
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Groups follow the role (accounts.services._apply_role); nothing else is related.
        pass

    def get_urls(self) -> list[Any]:
        # Django's own password form would change a password without a service and without an event.
        urls = [u for u in super().get_urls() if "password" not in str(u.pattern)]
        view = self.admin_site.admin_view(self.password_view)
        return [path("<path:object_id>/password/", view, name="accounts_user_password_change"), *urls]

    def password_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Set a user's password (an admin for anyone; anyone for themself) through user_set_password."""
        user = self.get_object(request, unquote(object_id))
        if user is None:
            raise Http404("No such user")
        if user.pk != request.user.pk and not self.has_change_permission(request, user):
            raise PermissionDenied
        if user.is_superuser and not request.user.is_superuser:
            raise PermissionDenied
        form = SetPasswordForm(user, request.POST or None)
        if request.method == "POST" and form.is_valid():
            services.user_set_password(
                actor=signed_in_user(request), user=user, password=form.cleaned_data["new_password1"]
            )
            self.message_user(
                request, f"Password of {user.username} changed; their sessions and tokens are ended.", messages.SUCCESS
            )
            if user.pk == request.user.pk:
                return redirect("admin:login")
            return redirect("admin:accounts_user_change", user.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change password: {user.username}",
            "form": form,
            "subject": user,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/user/password.html", context)

    @admin.action(
        description="Deactivate selected users (asks for a reason; ends their sessions and tokens at once)",
        permissions=["change"],
    )
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """An intermediate page first: who will be deactivated, and the reason (required, kept in each event)."""
        actor = signed_in_user(request)
        users = [
            u
            for u in queryset.filter(is_active=True).exclude(pk=actor.pk).order_by("pk")
            if request.user.is_superuser or not u.is_superuser
        ]
        form = DeactivateForm(request.POST if request.POST.get("confirm") == "yes" else None)
        if form.is_bound and form.is_valid():
            for user in users:
                services.user_deactivate(actor=actor, user=user, reason=form.cleaned_data["reason"])
            self.message_user(
                request, f"{len(users)} user(s) deactivated; their sessions and tokens are ended.", messages.SUCCESS
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Deactivate users",
            "opts": self.model._meta,
            "users": users,
            "skipped": queryset.count() - len(users),
            "form": form,
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "action": "deactivate_users",
        }
        return TemplateResponse(request, "admin/accounts/user/deactivate_confirm.html", context)

    @admin.action(description="Reactivate selected users", permissions=["change"])
    def reactivate_users(self, request: HttpRequest, queryset: QuerySet) -> None:
        users = list(queryset.filter(is_active=False).order_by("pk"))
        for user in users:
            services.user_reactivate(actor=signed_in_user(request), user=user)
        self.message_user(request, f"{len(users)} user(s) reactivated.", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    """Role groups: an admin may change which permissions a role has (the API follows at once). The change
    is recorded with the permissions added and removed. A role group's name is fixed: roles refer to it."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["name"] if obj is not None and obj.name in Role.values else []

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(obj is None or obj.name not in Role.values) and super().has_delete_permission(request, obj)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # The group form's only relation is its permissions: set through the service, with its event
        # (changeform_view is atomic, so the event commits with the change).
        services.group_permissions_set(
            actor=signed_in_user(request),
            group=form.instance,
            permissions=form.cleaned_data.get("permissions", []),
            created=not change,
        )


# Framework internals (simplejwt's token blacklist, axes' login-attempt records): superusers only.
superuser_only(admin.site, {"token_blacklist", "axes"})
