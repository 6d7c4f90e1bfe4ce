from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from ocpi_api.models import Role
from ocpi_api.modules import absolute_url
from ocpi_api.services import partner_invite


class Command(BaseCommand):
    help = "Invite an OCPI partner: creates it with a token A (printed once) for our versions URL."

    def add_arguments(self, parser):
        parser.add_argument("--country-code", required=True)
        parser.add_argument("--party-id", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--role", default=Role.EMSP, choices=Role.values)

    def handle(self, country_code, party_id, name, role, **options):
        if len(country_code) != 2 or len(party_id) != 3:
            raise CommandError("country code: 2 characters, party id: 3 characters")
        partner, token_a = partner_invite(country_code=country_code, party_id=party_id, name=name, role=role)
        self.stdout.write(f"partner {partner.pk}: {partner}")
        self.stdout.write(f"token A: {token_a}")
        self.stdout.write(f"versions URL: {absolute_url(reverse('ocpi:versions'))}")
