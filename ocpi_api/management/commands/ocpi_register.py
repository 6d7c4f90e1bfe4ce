from django.core.management.base import BaseCommand, CommandError

from ocpi_api.egress import networks_parse
from ocpi_api.envelope import OcpiError
from ocpi_api.services import partner_register


class Command(BaseCommand):
    help = "Register with an OCPI partner that gave us its versions URL and a token A (credentials handshake)."

    def add_arguments(self, parser):
        parser.add_argument("--versions-url", required=True)
        parser.add_argument("--token", required=True, help="The partner's token A")
        parser.add_argument("--name", default="")
        parser.add_argument("--plain-token", action="store_true", help="Send the token unencoded (pre-2.2.1 partners)")
        parser.add_argument(
            "--allow-network",
            action="append",
            default=[],
            help="A non-public network (e.g. 10.1.0.0/16) this partner lives in; repeat for more",
        )

    def handle(self, versions_url, token, name, plain_token, allow_network, **options):
        try:
            networks_parse(allow_network)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        try:
            partner = partner_register(
                versions_url=versions_url,
                token_a=token,
                name=name,
                encode_token=not plain_token,
                allowed_networks=",".join(allow_network),
            )
        except OcpiError as exc:
            raise CommandError(f"registration failed ({exc.status_code}): {exc.message}") from exc
        self.stdout.write(f"registered partner {partner.pk}: {partner} ({partner.role}), OCPI {partner.version}")
        self.stdout.write(f"endpoints: {', '.join(sorted({e['identifier'] for e in partner.endpoints}))}")
