"""guardian's AnonymousUser: the row guardian keeps for anonymous visitors. It is no one's account, so it is
made inactive with no usable password (it cannot sign in, by the API or the admin), is never listed, and no
service gives it a role, a password or its activity back."""

from __future__ import annotations

from typing import Any

from guardian.conf import settings as guardian_settings

from core.exceptions import InvalidInput

ANONYMOUS_USERNAME: str = guardian_settings.ANONYMOUS_USER_NAME or "AnonymousUser"


def is_anonymous_stand_in(user: Any) -> bool:
    return getattr(user, "username", None) == ANONYMOUS_USERNAME


def refuse_anonymous_stand_in(user: Any) -> None:
    if is_anonymous_stand_in(user):
        raise InvalidInput(
            f"{ANONYMOUS_USERNAME} stands for anonymous visitors: it is nobody's account.", code="anonymous_user"
        )


def anonymous_user_init(user_model: Any) -> Any:
    """GUARDIAN_GET_INIT_ANONYMOUS_USER: the stand-in as guardian creates it (after migrate), unusable."""
    user = user_model(username=ANONYMOUS_USERNAME, is_active=False, is_staff=False, is_superuser=False)
    user.set_unusable_password()
    return user
