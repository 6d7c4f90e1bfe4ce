"""Dashboard roles. Each role includes the ones below it: viewer reads, operator also sends commands to
chargers, admin also onboards stations. Superusers are admins without a group; users with no role get 403."""

from enum import IntEnum

from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.urls import reverse_lazy


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def group_name(self) -> str:
        return self.name.lower()


ROLE_BY_GROUP = {role.group_name: role for role in Role}


def user_role(user) -> Role | None:
    """The highest role the user holds, None for anonymous users and staff without a dashboard role."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    cached = getattr(user, "_dashboard_role", False)
    if cached is not False:
        return cached
    roles = [ROLE_BY_GROUP[name] for name in user.groups.values_list("name", flat=True) if name in ROLE_BY_GROUP]
    role = max(roles) if roles else None
    user._dashboard_role = role
    return role


def user_has_role(user, role: Role) -> bool:
    held = user_role(user)
    return held is not None and held >= role


class RoleRequiredMixin(AccessMixin):
    """Anonymous users go to the login page; logged-in users below `required_role` get 403."""

    required_role: Role = Role.VIEWER
    login_url = reverse_lazy("dashboard:login")

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not user_has_role(request.user, self.required_role):
            raise PermissionDenied(f"this needs the {self.required_role.group_name} role")
        return super().dispatch(request, *args, **kwargs)


def roles(request) -> dict:
    """Template context: what the current user may do, for showing or hiding buttons (the views check again)."""
    role = user_role(request.user) if hasattr(request, "user") else None
    return {
        "dashboard_role": role.group_name if role else "",
        "can_operate": role is not None and role >= Role.OPERATOR,
        "can_administer": role is not None and role >= Role.ADMIN,
    }
