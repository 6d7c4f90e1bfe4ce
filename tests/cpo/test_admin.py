"""Staff find stations, their frames and their transactions in the admin; secrets never show."""

from ocpp_gateway.models import MessageLog


def test_station_admin_links_to_its_message_log_and_hides_the_secret(admin_client, station_factory):
    station, secret = station_factory("CP-ADMIN")
    MessageLog.objects.create(
        station=station,
        identity="CP-ADMIN",
        direction="IN",
        message_type=2,
        unique_id="u1",
        action="Heartbeat",
        payload='[2,"u1","Heartbeat",{}]',
        created_at="2026-11-20T10:00Z",
    )
    page = admin_client.get(f"/admin/cpo/chargingstation/{station.pk}/change/").content.decode()
    assert "/admin/ocpp_gateway/messagelog/?identity=CP-ADMIN" in page
    assert secret not in page and station.secret_hash not in page
    log = admin_client.get("/admin/ocpp_gateway/messagelog/?identity=CP-ADMIN").content.decode()
    assert "Heartbeat" in log


def test_admin_lists_answer(admin_client, station_factory):
    station_factory("CP-LISTS")
    for url in (
        "/admin/cpo/location/",
        "/admin/cpo/evse/",
        "/admin/cpo/connector/",
        "/admin/cpo/chargingstation/",
        "/admin/cpo/token/",
        "/admin/ocpp_gateway/transaction/",
        "/admin/ocpp_gateway/metervalue/",
        "/admin/ocpp_gateway/messagelog/",
    ):
        assert admin_client.get(url).status_code == 200, url
