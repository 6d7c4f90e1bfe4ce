"""Tokens and staff users in the dashboard: operators add, block and import our RFID cards, partners' tokens are read
only, admins manage users and roles; every change is in the audit log."""

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from cpo.dashboard.models import AuditLog
from cpo.models import Token

User = get_user_model()


@pytest.mark.parametrize("role,status", [("viewer", 200), ("operator", 200), ("none", 403)])
def test_every_role_reads_the_tokens_page(client_as, role, status):
    Token.objects.create(uid="04A1B2C3", contract_id="NL-CPO-C00000001")
    response = client_as(role).get(reverse("dashboard:tokens"))
    assert response.status_code == status
    if status == 200:
        assert "04A1B2C3" in response.content.decode()


def test_a_viewer_cannot_change_tokens(client_as):
    token = Token.objects.create(uid="04A1B2C3")
    viewer = client_as("viewer")
    assert viewer.post(reverse("dashboard:token-create"), {"uid": "X", "type": "RFID"}).status_code == 403
    assert viewer.post(reverse("dashboard:token-action", args=[token.pk, "block"])).status_code == 403
    assert 'data-testid="token-add"' not in viewer.get(reverse("dashboard:tokens")).content.decode()


def test_an_operator_adds_blocks_and_unblocks_a_token_and_each_step_is_audited(client_as):
    operator = client_as("operator")
    added = operator.post(
        reverse("dashboard:token-create"),
        {"uid": "04A1B2C3", "type": "RFID", "contract_id": "NL-CPO-C00000001", "charging_priority": "0"},
    )
    assert added.status_code == 302
    token = Token.objects.get(uid="04A1B2C3")
    assert token.valid
    operator.post(reverse("dashboard:token-action", args=[token.pk, "block"]))
    token.refresh_from_db()
    assert not token.valid
    assert "Blocked" in operator.get(reverse("dashboard:tokens"), {"status": "blocked"}).content.decode()
    operator.post(reverse("dashboard:token-action", args=[token.pk, "unblock"]))
    token.refresh_from_db()
    assert token.valid
    assert list(AuditLog.objects.order_by("id").values_list("username", "action")) == [
        ("user-operator", "TokenCreate"),
        ("user-operator", "TokenBlock"),
        ("user-operator", "TokenUnblock"),
    ]
    twice = operator.post(
        reverse("dashboard:token-create"), {"uid": "04A1B2C3", "type": "RFID", "charging_priority": "0"}
    )
    assert twice.status_code == 400 and Token.objects.count() == 1


CSV = "uid,type,contract_id,visual_number,valid\n04000001,RFID,NL-CPO-C1,Card 1,yes\n04000002,,NL-CPO-C2,,no\n"


def test_a_csv_import_adds_tokens_and_importing_it_again_changes_nothing(client_as):
    operator = client_as("operator")
    upload = SimpleUploadedFile("cards.csv", ("\ufeff" + CSV).encode(), content_type="text/csv")
    response = operator.post(reverse("dashboard:token-import"), {"file": upload})
    assert response.status_code == 302
    assert {(t.uid, t.type, t.contract_id, t.valid) for t in Token.objects.all()} == {
        ("04000001", "RFID", "NL-CPO-C1", True),
        ("04000002", "RFID", "NL-CPO-C2", False),
    }
    again = operator.post(reverse("dashboard:token-import"), {"pasted": CSV}, follow=True)
    assert "0 added, 0 updated, 2 unchanged" in again.content.decode()
    audit = AuditLog.objects.filter(action="TokenImport").order_by("id")
    assert [a.payload for a in audit] == [
        {"created": 2, "updated": 0, "unchanged": 0},
        {"created": 0, "updated": 0, "unchanged": 2},
    ]


def test_a_csv_with_bad_lines_imports_nothing_and_says_which_lines(client_as):
    bad = "uid,type,valid\n04000001,RFID,yes\n,RFID,yes\n04000003,CARD,yes\n04000001,RFID,maybe\n"
    operator = client_as("operator")
    response = operator.post(reverse("dashboard:token-import"), {"pasted": bad})
    assert response.status_code == 400
    assert response.context["report"].errors == [
        (3, "uid is empty"),
        (4, "type 'CARD' is not one of AD_HOC_USER, APP_USER, OTHER, RFID"),
        (5, "valid 'maybe' is not yes or no"),
    ]
    assert not Token.objects.exists()
    unknown = operator.post(reverse("dashboard:token-import"), {"pasted": "id,colour\n1,red\n"})
    assert "the header has no uid column" in unknown.content.decode()


def test_only_admins_manage_users(client_as):
    assert client_as("operator").get(reverse("dashboard:users")).status_code == 403
    assert client_as("admin").get(reverse("dashboard:users")).status_code == 200


def test_an_admin_adds_a_user_changes_the_role_and_deactivates_them(client_as, make_user):
    admin = client_as("admin")
    created = admin.post(
        reverse("dashboard:users"),
        {"username": "olga", "email": "olga@example.com", "role": "viewer", "password": "a-Long-first-pass-2026"},
    )
    assert created.status_code == 302
    olga = User.objects.get(username="olga")
    assert list(olga.groups.values_list("name", flat=True)) == ["viewer"] and olga.check_password(
        "a-Long-first-pass-2026"
    )
    admin.post(reverse("dashboard:user-action", args=[olga.pk, "role"]), {"role": "operator"})
    assert list(olga.groups.values_list("name", flat=True)) == ["operator"]
    admin.post(reverse("dashboard:user-action", args=[olga.pk, "deactivate"]))
    olga.refresh_from_db()
    assert not olga.is_active
    assert list(AuditLog.objects.order_by("id").values_list("action", "payload")) == [
        ("UserCreate", {"username": "olga", "role": "viewer"}),
        ("UserRoleChange", {"username": "olga", "from": "viewer", "to": "operator"}),
        ("UserDeactivate", {"username": "olga"}),
    ]
    weak = admin.post(reverse("dashboard:users"), {"username": "ivan", "role": "viewer", "password": "1234"})
    assert weak.status_code == 400 and not User.objects.filter(username="ivan").exists()


def test_the_last_admin_cannot_demote_or_deactivate_themselves(client_as):
    admin = client_as("admin")
    me = User.objects.get(username="user-admin")
    response = admin.post(reverse("dashboard:user-action", args=[me.pk, "role"]), {"role": "viewer"}, follow=True)
    assert "last active admin" in response.content.decode()
    assert list(me.groups.values_list("name", flat=True)) == ["admin"]
    response = admin.post(reverse("dashboard:user-action", args=[me.pk, "deactivate"]), follow=True)
    assert "cannot deactivate yourself" in response.content.decode()
    me.refresh_from_db()
    assert me.is_active
