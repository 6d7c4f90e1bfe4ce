"""Staff users and their dashboard role, managed by admins from the dashboard. Every change is audited, and no admin
can lock the dashboard out: the last active admin cannot be demoted or deactivated."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from cpo.dashboard.permissions import ROLE_BY_GROUP, Role, user_role
from cpo.dashboard.services import audit_record

User = get_user_model()


def _role_set(user, role: Role) -> None:
    user.groups.remove(*Group.objects.filter(name__in=list(ROLE_BY_GROUP)))
    user.groups.add(Group.objects.get_or_create(name=role.group_name)[0])
    user._dashboard_role = role


def _active_admins() -> int:
    admins = Q(is_superuser=True) | Q(groups__name=Role.ADMIN.group_name)
    return User.objects.filter(admins, is_active=True).distinct().count()


def _keep_an_admin(user, *, losing: bool) -> None:
    if losing and user_role(user) == Role.ADMIN and _active_admins() <= 1:
        raise ValidationError("This is the last active admin: make another admin first.")


@transaction.atomic
def staff_user_create(*, by, username: str, email: str, role: Role, password: str):
    """A dashboard user with `role` and a password the admin hands over (the user should change it)."""
    if User.objects.filter(username__iexact=username).exists():
        raise ValidationError(f"A user {username!r} exists already.")
    user = User(username=username, email=email, is_staff=False)
    validate_password(password, user)
    user.set_password(password)
    user.save()
    _role_set(user, role)
    audit_record(user=by, action="UserCreate", payload={"username": username, "role": role.group_name})
    return user


@transaction.atomic
def staff_user_role_change(*, by, user, role: Role):
    before = user_role(user)
    _keep_an_admin(user, losing=before == Role.ADMIN and role != Role.ADMIN)
    if user.is_superuser and role != Role.ADMIN:
        raise ValidationError("A superuser is an admin whatever its group: change it in the Django admin.")
    _role_set(user, role)
    audit_record(
        user=by,
        action="UserRoleChange",
        payload={"username": user.username, "from": before.group_name if before else "", "to": role.group_name},
    )
    return user


@transaction.atomic
def staff_user_activate(*, by, user, active: bool):
    """Deactivate (the user can no longer log in; their sessions end at the next request) or reactivate."""
    if not active:
        if user.pk == by.pk:
            raise ValidationError("You cannot deactivate yourself.")
        _keep_an_admin(user, losing=True)
    user.is_active = active
    user.save(update_fields=["is_active"])
    audit_record(user=by, action="UserActivate" if active else "UserDeactivate", payload={"username": user.username})
    return user
