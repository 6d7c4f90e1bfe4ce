"""`manage.py settlement --partner NL-EXM --month 2026-11 [--out FILE]`: the partner's CDRs of that month as
CSV (see `billing.selectors.settlement_summary`)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.selectors import month_bounds, settlement_as_csv, settlement_summary


def partner_split(text: str) -> tuple[str, str]:
    """`NL-EXM` (or `NL*EXM`, `NLEXM`) -> ("NL", "EXM")."""
    compact = text.replace("-", "").replace("*", "").strip().upper()
    if len(compact) != 5 or not compact[:2].isalpha():
        raise ValueError(f"partner must be COUNTRY-PARTY like NL-EXM, got {text!r}")
    return compact[:2], compact[2:]


class Command(BaseCommand):
    help = "Settlement of one EMSP partner for one month as CSV: CDRs, kWh, hours, amount excl/incl VAT."

    def add_arguments(self, parser):
        parser.add_argument("--partner", required=True, help="OCPI country code and party id, e.g. NL-EXM")
        parser.add_argument("--month", required=True, help="YYYY-MM (UTC), e.g. 2026-11")
        parser.add_argument("--out", help="write the CSV to this file instead of standard output")

    def handle(self, *args, partner: str, month: str, out: str | None = None, **options):
        try:
            country_code, party_id = partner_split(partner)
            month_bounds(month=month)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        text = settlement_as_csv(rows=settlement_summary(country_code=country_code, party_id=party_id, month=month))
        if out:
            Path(out).write_text(text)
            self.stderr.write(f"settlement of {country_code}-{party_id} for {month} written to {out}")
        else:
            self.stdout.write(text, ending="")
