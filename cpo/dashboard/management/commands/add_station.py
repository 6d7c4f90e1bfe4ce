from django.core.management.base import BaseCommand, CommandError

from billing.selectors import tariff_get
from cpo.models import ChargingStation, Location, SecurityProfile
from cpo.services import station_create


class Command(BaseCommand):
    help = "Register a charging station at a location; prints its generated secret once."

    def add_arguments(self, parser):
        parser.add_argument("identity")
        parser.add_argument("--location", required=True, help="Location id")
        parser.add_argument("--evses", type=int, default=1)
        parser.add_argument(
            "--tariff", help="Tariff id of the new connectors (default: the location's default tariff, if any)"
        )
        parser.add_argument("--password", help="Use this secret (16-40 characters) instead of generating one")
        parser.add_argument(
            "--security-profile",
            type=int,
            choices=SecurityProfile.values,
            default=SecurityProfile.BASIC,
            help="OCPP security profile: 0 no authentication (lab chargers only), 1 Basic (default), 2 Basic over TLS",
        )

    def handle(self, identity, location, evses, tariff, password, security_profile, **options):
        loc = Location.objects.filter(id=location).first()
        if loc is None:
            raise CommandError(f"no location with id {location!r}")
        if ChargingStation.objects.filter(identity=identity).exists():
            raise CommandError(f"station {identity!r} exists already")
        tariff_id = tariff if tariff is not None else loc.default_tariff_id
        if tariff_id and tariff_get(tariff_id=tariff_id) is None:
            raise CommandError(f"no tariff with id {tariff_id!r}")
        try:
            station, secret = station_create(
                identity=identity,
                location=loc,
                evses=evses,
                password=password,
                security_profile=security_profile,
                tariff_id=tariff_id,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        on_tariff = f" on tariff {tariff_id}" if tariff_id else " WITHOUT a tariff: its sessions cost nothing"
        self.stdout.write(f"station {station.identity} at {loc.id} with {evses} EVSE(s){on_tariff}")
        if not password:
            self.stdout.write(f"secret: {secret}")
