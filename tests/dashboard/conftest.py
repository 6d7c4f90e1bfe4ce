"""Staff users of each role, logged-in clients, and a network to look at."""

import pytest

from tests.dashboard.factories import PASSWORD


@pytest.fixture
def make_user(db):
    from django.contrib.auth.models import Group, User

    def make(username: str, role: str | None = None, **extra):
        user = User.objects.create_user(username=username, password=PASSWORD, **extra)
        if role:
            # The data migration creates the groups; transactional tests flush them, so make sure they exist.
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        return user

    return make


@pytest.fixture
def client_as(client, make_user):
    """client_as("operator") -> a Django test client logged in as a user with that role ("none": no role,
    "superuser": a superuser without groups)."""

    def login(role: str):
        if role == "superuser":
            user = make_user("root", is_superuser=True, is_staff=True)
        else:
            user = make_user(f"user-{role}", None if role == "none" else role)
        client.force_login(user)
        client.user = user
        return client

    return login
