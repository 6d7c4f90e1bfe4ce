from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from billing.services import tariff_seed_demo
from cpo.models import Connector, Location, ParkingType, Token, TokenType
from cpo.services import station_create, station_secret_check, station_secret_reset

DEMO_IDENTITY = "DEMO-CP-1"
DEMO_TARIFF_ID = "DEMO-AC"


class Command(BaseCommand):
    help = (
        "Load demo data: a location with EVSEs, a station, a tariff and a local token. Safe to run again: the "
        "demo station keeps its secret (a charger configured once stays admitted)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            help="Secret for the demo station (default: DEMO_STATION_SECRET, which `make run` keeps in .env; "
            "without either a new station gets a random one and an existing station keeps its own)",
        )

    @transaction.atomic
    def handle(self, password=None, **options):
        password = password or settings.DEMO_STATION_SECRET or None
        location, _ = Location.objects.get_or_create(
            id="LOC-DEMO-1",
            defaults=dict(
                name="Demo Plaza",
                address="Stationsplein 1",
                city="Amsterdam",
                postal_code="1012AB",
                country="NLD",
                latitude=Decimal("52.378901"),
                longitude=Decimal("4.900272"),
                parking_type=ParkingType.PARKING_LOT,
                time_zone="Europe/Amsterdam",
                opening_times={"twentyfourseven": True},
            ),
        )
        station = location.stations.filter(identity=DEMO_IDENTITY).first()
        secret = password
        if station is None:
            station, secret = station_create(identity=DEMO_IDENTITY, location=location, evses=2, password=password)
        elif password and not station_secret_check(secret_hash=station.secret_hash, secret=password):
            station_secret_reset(station=station, password=password)
        self._seed_tariff()
        if location.default_tariff_id != DEMO_TARIFF_ID:
            location.default_tariff_id = DEMO_TARIFF_ID
            location.save(update_fields=["default_tariff_id", "last_updated"])
        Connector.objects.filter(evse__station=station).update(tariff_ids=[DEMO_TARIFF_ID])
        Token.objects.get_or_create(
            uid="DEMO-RFID-1",
            type=TokenType.RFID,
            defaults=dict(
                contract_id=f"{settings.OCPI_COUNTRY_CODE}-{settings.OCPI_PARTY_ID}-C00000001-X",
                visual_number="DEMO 0001",
                issuer=settings.OCPI_BUSINESS_NAME,
            ),
        )
        self.stdout.write(f"demo location {location.id}, station {station.identity}, token DEMO-RFID-1")
        self.stdout.write(f"station identity: {station.identity}")
        if secret:
            self.stdout.write(f"station secret: {secret}")
        else:
            self.stdout.write("station secret: unchanged (printed when it was set; --password sets a new one)")

    def _seed_tariff(self) -> None:
        tariff_seed_demo(tariff_id=DEMO_TARIFF_ID)
