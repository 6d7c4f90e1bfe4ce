"""The partners page: every role sees each EMSP's registration, modules, tokens and pushes; admins invite a
partner (token A shown once) and register with one over a real OCPI credentials handshake."""

import pytest
from django.urls import reverse

from cpo.dashboard.models import AuditLog
from ocpi_api.models import OutboxStatus, Partner, PartnerStatus
from ocpi_api.selectors import credentials_token_hash
from tests.dashboard.factories import PARTNER_T0 as T0
from tests.dashboard.factories import push, registered_partner, token
from tests.ocpi_api.emsp import FakeEmsp


@pytest.fixture
def network(db):
    """Two partners: NL*EXM with 3 tokens, a delivered push, one retrying, one waiting and one given up;
    DE*OTH invited only."""
    exm = registered_partner()
    for uid in ("AAA1", "BBB2", "CCC3"):
        token(exm, uid)
    push(exm, OutboxStatus.SENT, sent_at=T0, key="cdr:1")
    push(exm, OutboxStatus.PENDING, attempts=3, error="ReadTimeout", key="cdr:2")
    push(exm, OutboxStatus.PENDING, key="session:3")
    push(exm, OutboxStatus.FAILED, attempts=9, error="HTTP 500 from partner", key="cdr:4")
    invited = Partner.objects.create(name="Other", country_code="DE", party_id="OTH", status=PartnerStatus.INVITED)
    return exm, invited


# --- Access --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["dashboard:partners", "dashboard:partner"])
def test_anonymous_users_log_in_first_and_users_without_a_role_are_refused(client, client_as, network, name):
    url = reverse(name, args=[network[0].pk] if name == "dashboard:partner" else [])
    assert client.get(url)["Location"].startswith(reverse("dashboard:login"))
    assert client_as("none").get(url).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_viewers_and_operators_cannot_invite_or_register(client_as, role):
    user = client_as(role)
    page = user.get(reverse("dashboard:partners")).content
    assert b'data-testid="partner-invite"' not in page and b'data-testid="partner-register"' not in page
    invite = user.post(
        reverse("dashboard:partner-invite"), {"name": "X", "country_code": "NL", "party_id": "XXX", "role": "EMSP"}
    )
    register = user.post(
        reverse("dashboard:partner-register"), {"versions_url": "http://127.0.0.1:9/versions", "token": "t"}
    )
    assert (invite.status_code, register.status_code) == (403, 403)
    assert not Partner.objects.exists() and not AuditLog.objects.exists()


@pytest.mark.django_db
def test_partner_forms_need_csrf(make_user):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(make_user("adm", "admin"))
    response = browser.post(
        reverse("dashboard:partner-invite"), {"name": "X", "country_code": "NL", "party_id": "XXX", "role": "EMSP"}
    )
    assert response.status_code == 403 and not Partner.objects.exists()


# --- Content -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["viewer", "operator", "admin"])
def test_the_list_shows_registration_modules_tokens_and_pushes(client_as, network, role):
    exm, invited = network
    response = client_as(role).get(reverse("dashboard:partners"))
    rows = {row.partner.pk: row for row in response.context["partners"]}
    row = rows[exm.pk]
    assert (row.tokens, row.modules) == (3, ["cdrs", "sessions", "tokens"])
    assert (row.outbox.pending, row.outbox.retrying, row.outbox.failed, row.outbox.last_sent_at) == (2, 1, 1, T0)
    assert (rows[invited.pk].tokens, rows[invited.pk].outbox.pending) == (0, 0)
    html = response.content.decode()
    assert "Registered" in html and "Invited" in html and "cdrs, sessions, tokens" in html
    assert "<td>eMSP</td>" in html and "<td>EMSP<" not in html
    assert "http://127.0.0.1:8000/ocpi/versions" in html or "/ocpi/versions" in html
    assert "secret-token-of-EXM" not in html


@pytest.mark.django_db
def test_the_list_takes_a_fixed_number_of_queries(client_as, network, django_assert_max_num_queries):
    for n in range(5):
        registered_partner(country_code="BE", party_id=f"P{n:02d}")
    viewer = client_as("viewer")
    viewer.get(reverse("dashboard:partners"))
    with django_assert_max_num_queries(8):
        viewer.get(reverse("dashboard:partners"))


@pytest.mark.django_db
def test_the_detail_shows_endpoints_failed_pushes_and_searchable_tokens(client_as, network):
    exm, _ = network
    token(exm, "ZZZ9", valid=False, visual_number="CARD 99")
    viewer = client_as("viewer")
    url = reverse("dashboard:partner", args=[exm.pk])
    response = viewer.get(url)
    html = response.content.decode()
    assert "https://emsp.example/cdrs" in html and "RECEIVER" in html
    assert "ReadTimeout" in html and "HTTP 500 from partner" in html  # retrying and given up, with the error
    assert [m.object_key for m in response.context["problems"]] == ["cdr:4", "cdr:2"]
    assert response.context["tokens"].paginator.count == 4
    assert [t.uid for t in viewer.get(url, {"q": "card 99"}).context["tokens"]] == ["ZZZ9"]
    assert "secret-token-of-EXM" not in html and f"{exm.incoming_token_prefix}…" in html  # only a prefix


@pytest.mark.django_db
def test_a_missing_partner_is_404(client_as):
    assert client_as("viewer").get(reverse("dashboard:partner", args=[999])).status_code == 404


# --- Invite --------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_admin_invites_a_partner_and_sees_token_a_once(client_as):
    admin = client_as("admin")
    response = admin.post(
        reverse("dashboard:partner-invite"),
        {"name": "New EMSP", "country_code": "be", "party_id": "nem", "role": "EMSP"},
    )
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    token_a = response.context["token_a"]
    partner = Partner.objects.get()
    assert (partner.country_code, partner.party_id, partner.status) == ("BE", "NEM", PartnerStatus.INVITED)
    assert partner.incoming_token_hash == credentials_token_hash(token_a)
    html = response.content.decode()
    assert token_a in html and "/ocpi/versions" in html
    for url in (reverse("dashboard:partners"), reverse("dashboard:partner", args=[partner.pk])):
        assert token_a not in admin.get(url).content.decode()
    audit = AuditLog.objects.get()
    assert audit.action == "PartnerInvite" and audit.username == "user-admin" and token_a not in str(audit.payload)


@pytest.mark.django_db
def test_an_invalid_invitation_creates_nothing(client_as):
    response = client_as("admin").post(
        reverse("dashboard:partner-invite"), {"name": "X", "country_code": "NLD", "party_id": "X", "role": "EMSP"}
    )
    assert response.status_code == 400 and not Partner.objects.exists()
    assert set(response.context["invite_form"].errors) == {"country_code", "party_id"}


@pytest.mark.django_db(transaction=True)
def test_the_invited_emsp_registers_over_http_with_the_token_shown(client_as, live_server, settings):
    settings.OCPI_BASE_URL = live_server.url
    emsp = FakeEmsp().start()
    try:
        response = client_as("admin").post(
            reverse("dashboard:partner-invite"),
            {"name": "Example EMSP", "country_code": "NL", "party_id": "EXM", "role": "EMSP"},
        )
        assert response.context["versions_url"] == f"{live_server.url}/ocpi/versions"
        answer = emsp.register_with(versions_url=response.context["versions_url"], token_a=response.context["token_a"])
        assert answer.json()["status_code"] == 1000
    finally:
        emsp.stop()
    assert Partner.objects.get().status == PartnerStatus.REGISTERED


# --- Register ------------------------------------------------------------------------------------------------


@pytest.fixture
def emsp_and_us(live_server, settings):
    settings.OCPI_BASE_URL = live_server.url  # the EMSP calls our versions back during the handshake
    emsp = FakeEmsp().start()
    yield emsp
    emsp.stop()


@pytest.mark.django_db(transaction=True)
def test_an_admin_registers_with_an_emsp(client_as, emsp_and_us):
    emsp = emsp_and_us
    admin = client_as("admin")
    response = admin.post(
        reverse("dashboard:partner-register"),
        {"versions_url": emsp.versions_url, "token": emsp.token_a, "name": ""},
        follow=True,
    )
    partner = Partner.objects.get()
    assert partner.status == PartnerStatus.REGISTERED and partner.outgoing_token == emsp.token_c
    assert response.redirect_chain[-1][0] == reverse("dashboard:partner", args=[partner.pk])
    html = response.content.decode()
    assert "Registered with NL/EXM Example EMSP (EMSP), OCPI 2.2.1: cdrs, credentials, locations" in html
    assert emsp.token_a not in html and emsp.token_c not in html
    audit = AuditLog.objects.get()
    assert audit.ok and audit.action == "PartnerRegister" and emsp.token_a not in str(audit.payload)


@pytest.mark.django_db(transaction=True)
def test_a_failed_registration_shows_the_ocpi_error(client_as, emsp_and_us):
    emsp = emsp_and_us
    admin = client_as("admin")
    response = admin.post(
        reverse("dashboard:partner-register"), {"versions_url": emsp.versions_url, "token": "wrong-token"}
    )
    assert response.status_code == 400
    assert "Registration failed (OCPI 3001)" in response.content.decode()
    assert not Partner.objects.filter(status=PartnerStatus.REGISTERED).exists()
    audit = AuditLog.objects.get()
    assert not audit.ok and audit.error.startswith("3001")
    emsp.versions_override = [{"version": "2.1.1", "url": f"{emsp.base_url}/2.1.1"}]
    response = admin.post(
        reverse("dashboard:partner-register"), {"versions_url": emsp.versions_url, "token": emsp.token_a}
    )
    assert "Registration failed (OCPI 3002)" in response.content.decode()
