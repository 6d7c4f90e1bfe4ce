"""Dashboard benchmark: server time of every dashboard page on a realistic network in PostgreSQL.

    DEBUG=1 .venv/bin/python bench/dashboard_bench.py                 # build cpo_dashbench if empty, measure
    DEBUG=1 .venv/bin/python bench/dashboard_bench.py --rebuild       # drop and generate the data again
    options: --database cpo_dashbench --stations 2000 --sessions 200000 --meter-values 1000000 --repeat 20

The data set is bulk-loaded with COPY (every column of each table, model defaults for those not chosen):
2,000 stations at 500 locations with 2 EVSEs each, 200,000 transactions over the last year (1,000 still
charging), 5 meter values per transaction (1,000,000), a billing Session per transaction and a CDR per ended one,
10 EMSP partners with 5,000 tokens each, an outbox message per partner CDR (delivered, some failed or pending),
100,000 OCPP message-log rows. Pages are requested in-process with Django's test client (no network, no
daphne): what is measured is the server's work, from the middleware to the last byte of the response body
(streamed CSVs included), with the database on the same machine. Each page is requested once to warm up, then
`--repeat` times; p50/p95 are over those. Target: p95 < 300 ms for every page.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 300
LOCATIONS_PER_STATION = 4  # stations per location
PARTNERS = 10
TOKENS_PER_PARTNER = 5000
MESSAGE_LOG_ROWS = 100_000
ACTIVE = 1000


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="cpo_dashbench")
    parser.add_argument("--host-url", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"))
    parser.add_argument("--stations", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=200_000)
    parser.add_argument("--meter-values", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--rebuild", action="store_true", help="drop the database and generate it again")
    parser.add_argument("--only", default="", help="measure only pages whose name contains this")
    parser.add_argument("--gateway-index", action="store_true",
                        help="measure with the index on ocpp_gateway_transaction(started_at) that the gateway lacks "
                             "(created here; dropped again without this flag)")
    parser.add_argument("--no-rollups", action="store_true",
                        help="measure analytics computed live (analytics roll-ups emptied); by default the closed days "
                             "of the last year are rolled up first (manage.py analytics_rebuild), timed")
    return parser.parse_args()


def ensure_database(args) -> bool:
    """Create the benchmark database (dropping it first with --rebuild). True when it is new."""
    import psycopg

    with psycopg.connect(f"{args.host_url}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [args.database]).fetchone()
        if exists and args.rebuild:
            conn.execute(f'DROP DATABASE "{args.database}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{args.database}"')
            return True
    return False


# --- Bulk loading ------------------------------------------------------------------------------------------------


class Copier:
    """COPY rows into a model's table: every concrete column except an auto primary key; columns a row leaves out
    get the model field's default (auto_now fields: now)."""

    def __init__(self, model):
        from django.db import models

        self.model = model
        self.fields = [f for f in model._meta.concrete_fields
                       if not (f.primary_key and isinstance(f, (models.AutoField, models.BigAutoField)))]
        self.now = datetime.now(UTC)
        self.defaults = {f.attname: self._default(f) for f in self.fields}

    def _default(self, field):
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            return self.now
        if field.has_default():
            return field.get_default()
        if field.null:
            return None
        if field.get_internal_type() in ("CharField", "TextField", "SlugField", "URLField"):
            return ""
        return None

    def _value(self, field, value):
        from django.db.models import JSONField

        if isinstance(field, JSONField) and value is not None:
            from billing.encoding import DecimalJSONEncoder

            return json.dumps(value, cls=DecimalJSONEncoder)
        return value

    def copy(self, rows) -> int:
        from django.db import connection

        table = connection.ops.quote_name(self.model._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(f.column) for f in self.fields)
        count = 0
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([self._value(f, row.get(f.attname, self.defaults[f.attname])) for f in self.fields])
                    count += 1
        return count


def generate(args) -> None:
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from billing.models import Cdr, Session
    from billing.services import tariff_seed_demo
    from cpo.models import EVSE, ChargingStation, Connector, Location
    from ocpi_api.models import OutboxMessage, Partner, PartnerParty, PartnerToken
    from ocpp_gateway.models import MessageLog, MeterValue, Transaction

    rng = random.Random(5)
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.monotonic()

    def step(name, count):
        print(f"  {name:<16} {count:>9,} rows  {time.monotonic() - started:6.1f} s", flush=True)

    tariff_seed_demo(tariff_id="AC-1")
    for n in range(2, 6):
        tariff_seed_demo(tariff_id=f"AC-{n}")
    User.objects.create_superuser("bench", password="bench")

    with transaction.atomic():
        n_locations = max(args.stations // LOCATIONS_PER_STATION, 1)
        step("locations", Copier(Location).copy(
            {"id": f"LOC-{i:05d}", "name": f"Plaza {i}", "address": f"Street {i}", "city": f"City {i % 50}",
             "postal_code": "1000AA", "country": "NLD", "latitude": Decimal("52.0") + Decimal(i % 100) / 100,
             "longitude": Decimal("4.5") + Decimal(i // 100) / 100, "time_zone": "Europe/Amsterdam"}
            for i in range(n_locations)))
        step("stations", Copier(ChargingStation).copy(
            {"identity": f"CP-{i:05d}", "location_id": f"LOC-{i % n_locations:05d}", "secret_hash": "x",
             "vendor": "ACME", "model": "Wallbox", "ocpp_version": "1.6", "registration_status": "Accepted",
             "online": rng.random() < 0.9, "last_seen": now}
            for i in range(args.stations)))
        station_ids = dict(ChargingStation.objects.values_list("identity", "pk"))
        statuses = ["AVAILABLE"] * 12 + ["CHARGING"] * 5 + ["OUTOFORDER", "UNKNOWN"]
        step("evses", Copier(EVSE).copy(
            {"uid": f"EVSE-{i:05d}-{e}", "evse_id": f"NL*CPO*E{i:05d}{e}", "location_id": f"LOC-{i % n_locations:05d}",
             "station_id": station_ids[f"CP-{i:05d}"], "ocpp_evse_id": e, "status": rng.choice(statuses),
             "status_updated": now}
            for i in range(args.stations) for e in (1, 2)))
        evse_ids = dict(EVSE.objects.values_list("uid", "pk"))
        step("connectors", Copier(Connector).copy(
            {"evse_id": pk, "connector_id": "1", "tariff_ids": ["AC-1"]} for pk in evse_ids.values()))

        partners = []
        for p in range(PARTNERS):
            code = f"E{p:02d}"
            partners.append(Partner.objects.create(
                name=f"EMSP {p}", country_code="NL", party_id=code, status="REGISTERED", version="2.2.1",
                roles=[{"role": "EMSP", "country_code": "NL", "party_id": code, "business_details": {"name": f"EMSP {p}"}}],
                endpoints=[{"identifier": m, "role": "RECEIVER", "url": f"https://emsp{p}.example/{m}"}
                           for m in ("cdrs", "sessions", "locations", "tariffs")],
                incoming_token_hash=f"{p:064d}", registered_at=now))
            PartnerParty.objects.create(partner=partners[-1], country_code="NL", party_id=code)
        step("partner tokens", Copier(PartnerToken).copy(
            {"partner_id": partner.pk, "country_code": "NL", "party_id": partner.party_id, "uid": f"{partner.party_id}{t:07d}",
             "type": "RFID", "contract_id": f"NL-{partner.party_id}-C{t:08d}", "issuer": partner.name, "valid": True,
             "whitelist": "ALLOWED", "last_updated": now}
            for partner in partners for t in range(TOKENS_PER_PARTNER)))

        span = timedelta(days=365)
        step_s = span.total_seconds() / args.sessions
        first = now - span
        plan = []  # (station identity, evse number, start, end or None, kwh, partner or None)
        for i in range(args.sessions):
            start = first + timedelta(seconds=i * step_s)
            active = i >= args.sessions - ACTIVE
            minutes = rng.randint(10, 240)
            end = None if active else start + timedelta(minutes=minutes)
            partner = rng.choice(partners) if rng.random() < 0.7 else None
            plan.append((f"CP-{rng.randrange(args.stations):05d}", rng.choice((1, 2)), start, end,
                         Decimal(rng.randint(1000, 60000)) / 1000, partner))

        def transactions():
            for i, (identity, evse, start, end, kwh, partner) in enumerate(plan):
                yield {
                    "station_id": station_ids[identity], "evse_id": evse_ids[f"EVSE-{identity[3:]}-{evse}"],
                    "transaction_id": str(i + 1), "ocpp_version": "1.6", "ocpp_evse_id": evse, "connector_id": evse,
                    "id_tag": f"{partner.party_id}{i % TOKENS_PER_PARTNER:07d}" if partner else f"OWN{i % 500:05d}",
                    "token_country_code": "NL" if partner else "", "token_party_id": partner.party_id if partner else "",
                    "auth_status": "Accepted", "status": "ACTIVE" if end is None else "ENDED", "started_at": start,
                    "ended_at": end, "meter_start": Decimal(0), "meter_stop": None if end is None else kwh * 1000,
                    "meter_last": kwh * 1000, "meter_last_at": end or now, "power_last": Decimal(11000),
                    "stop_reason": "" if end is None else "Local",
                }

        step("transactions", Copier(Transaction).copy(transactions()))
        tx_ids = list(Transaction.objects.order_by("started_at").values_list("pk", "station_id"))

        per_tx = max(args.meter_values // args.sessions, 1)

        def meter_values():
            for (pk, station_id), (_, evse, start, end, kwh, _) in zip(tx_ids, plan):
                length = (end or now) - start
                for k in range(per_tx):
                    share = Decimal(k + 1) / per_tx
                    yield {"station_id": station_id, "transaction_id": pk, "ocpp_evse_id": evse,
                           "timestamp": start + length * float(share), "measurand": "Energy.Active.Import.Register",
                           "value": (kwh * 1000 * share).quantize(Decimal("0.001")), "unit": "Wh",
                           "context": "Sample.Periodic"}

        step("meter values", Copier(MeterValue).copy(meter_values()))

        def sessions():
            for (pk, _), (identity, evse, start, end, kwh, partner) in zip(tx_ids, plan):
                cost = (Decimal(1) + kwh * Decimal("0.35")).quantize(Decimal("0.01"))
                yield {
                    "country_code": "NL", "party_id": "CPO", "id": f"S{pk}", "transaction_id": pk,
                    "emsp_country_code": "NL" if partner else "", "emsp_party_id": partner.party_id if partner else "",
                    "start_date_time": start, "end_date_time": end, "kwh": kwh,
                    "cdr_token": {"uid": "x", "type": "RFID", "contract_id": "x", "country_code": "NL",
                                  "party_id": partner.party_id if partner else "CPO"},
                    "auth_method": "WHITELIST", "location_id": f"LOC-{int(identity[3:]) % n_locations:05d}",
                    "evse_uid": f"EVSE-{identity[3:]}-{evse}", "connector_id": "1", "currency": "EUR",
                    "total_cost_excl_vat": cost, "total_cost_incl_vat": (cost * Decimal("1.21")).quantize(Decimal("0.01")),
                    "status": "ACTIVE" if end is None else "COMPLETED", "tariffs": [{"id": "AC-1"}],
                    "cdr_location": {"id": f"LOC-{int(identity[3:]) % n_locations:05d}", "evse_uid": f"EVSE-{identity[3:]}-{evse}",
                                     "connector_id": "1"},
                    "last_updated": end or now, "created_at": start,
                }

        step("billing sessions", Copier(Session).copy(sessions()))

        outbox_plan = []

        def cdrs():
            for (pk, _), (identity, evse, start, end, kwh, partner) in zip(tx_ids, plan):
                if end is None:
                    continue
                energy = (kwh * Decimal("0.35")).quantize(Decimal("0.01"))
                if partner is not None:
                    outbox_plan.append((partner.pk, f"cdrs:NL:CPO:CDR{pk}", end))
                yield {
                    "country_code": "NL", "party_id": "CPO", "id": f"CDR{pk}", "session_id": f"S{pk}",
                    "emsp_country_code": "NL" if partner else "", "emsp_party_id": partner.party_id if partner else "",
                    "start_date_time": start, "end_date_time": end,
                    "cdr_token": {"uid": "x", "type": "RFID", "contract_id": "x"}, "auth_method": "WHITELIST",
                    "cdr_location": {"id": f"LOC-{int(identity[3:]) % n_locations:05d}", "evse_uid": f"EVSE-{identity[3:]}-{evse}",
                                     "connector_id": "1", "name": "Plaza"},
                    "currency": "EUR", "tariffs": [{"id": "AC-1"}],
                    "charging_periods": [{"start_date_time": start.isoformat(), "dimensions": [{"type": "ENERGY", "volume": kwh}]}],
                    "total_cost_excl_vat": Decimal(1) + energy, "total_cost_incl_vat": ((Decimal(1) + energy) * Decimal("1.21")).quantize(Decimal("0.01")),
                    "total_fixed_cost_excl_vat": Decimal(1), "total_fixed_cost_incl_vat": Decimal("1.21"),
                    "total_energy": kwh, "total_energy_cost_excl_vat": energy,
                    "total_energy_cost_incl_vat": (energy * Decimal("1.21")).quantize(Decimal("0.01")),
                    "total_time": Decimal((end - start).total_seconds() / 3600).quantize(Decimal("0.0001")),
                    "last_updated": end + timedelta(minutes=1),
                }

        step("cdrs", Copier(Cdr).copy(cdrs()))

        def outbox():
            for partner_id, key, end in outbox_plan:
                roll = rng.random()
                status = "FAILED" if roll < 0.005 else "PENDING" if roll < 0.01 else "SENT"
                yield {"partner_id": partner_id, "module": "cdrs", "method": "POST", "path": "", "object_key": key,
                       "to_country_code": "NL", "to_party_id": "E00", "body": {}, "status": status,
                       "attempts": 0 if status == "SENT" else rng.randint(1, 9),
                       "last_error": "" if status == "SENT" else "ConnectTimeout", "due_at": end,
                       "next_attempt_at": end, "give_up_at": end + timedelta(days=14), "correlation_id": "c",
                       "created_at": end, "sent_at": end + timedelta(seconds=2) if status == "SENT" else None}

        step("outbox", Copier(OutboxMessage).copy(outbox()))
        step("message log", Copier(MessageLog).copy(
            {"station_id": station_ids[f"CP-{i % args.stations:05d}"], "identity": f"CP-{i % args.stations:05d}",
             "direction": "IN", "message_type": 2, "unique_id": str(i), "action": "Heartbeat",
             "payload": f'[2,"{i}","Heartbeat",{{}}]', "created_at": now - timedelta(seconds=i)}
            for i in range(MESSAGE_LOG_ROWS)))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    step("analyze", 0)


# --- Measuring ---------------------------------------------------------------------------------------------------


def pages() -> list[tuple[str, str]]:
    from django.urls import reverse

    from billing.models import Cdr
    from ocpi_api.models import OutboxMessage, Partner
    from ocpp_gateway.models import Transaction

    today = datetime.now(UTC).date()
    month_ago = today - timedelta(days=30)
    partner = Partner.objects.order_by("pk").first()
    tx = Transaction.objects.filter(status="ENDED").order_by("-started_at").first()
    station = tx.station.identity
    cdr = Cdr.objects.order_by("-last_updated").first()
    failed = OutboxMessage.objects.filter(status="FAILED").order_by("-id").first()
    failed_cdr = failed.object_key.rsplit(":", 1)[-1] if failed else cdr.id
    location = tx.station.location_id
    period = f"issued_from={month_ago}&issued_to={today}"
    return [
        ("overview", reverse("dashboard:overview")),
        ("overview live part", reverse("dashboard:overview-live")),
        ("stations", reverse("dashboard:stations")),
        ("stations, search", reverse("dashboard:stations") + "?q=plaza 1&online=1"),
        ("stations, faulted by last seen", reverse("dashboard:stations") + "?status=faulted&sort=-last_seen"),
        ("stations, charging by faults", reverse("dashboard:stations") + "?status=charging&sort=-faulted"),
        ("stations live part, offline", reverse("dashboard:stations-live") + "?status=offline&sort=last_seen"),
        ("station detail", reverse("dashboard:station", args=[station])),
        ("station live part", reverse("dashboard:station-live", args=[station])),
        ("station log, filtered", reverse("dashboard:station", args=[station]) + "?action=Heartbeat&page=2"),
        ("sessions", reverse("dashboard:sessions")),
        ("sessions, partner", reverse("dashboard:sessions") + f"?partner={partner.pk}"),
        ("sessions, location+period", reverse("dashboard:sessions")
         + f"?location={location}&started_from={month_ago}&started_to={today}"),
        ("sessions, page 200", reverse("dashboard:sessions") + "?page=200"),
        ("session detail", reverse("dashboard:session", args=[tx.pk])),
        ("cdrs", reverse("dashboard:cdrs")),
        ("cdrs, partner+period", reverse("dashboard:cdrs") + f"?partner={partner.pk}&{period}"),
        ("cdrs, location", reverse("dashboard:cdrs") + f"?location={location}"),
        ("cdrs, push failed", reverse("dashboard:cdrs") + "?push_state=failed"),
        ("cdrs, page 100", reverse("dashboard:cdrs") + "?page=100"),
        ("cdr detail", reverse("dashboard:cdr", args=[failed_cdr])),
        ("cdr csv, partner+month", reverse("dashboard:cdr-export") + f"?partner={partner.pk}&{period}"),
        ("partners", reverse("dashboard:partners")),
        ("partner detail", reverse("dashboard:partner", args=[partner.pk])),
        ("tariffs", reverse("dashboard:tariffs")),
        ("tariff + preview", reverse("dashboard:tariff", args=["AC-1"])
         + "?kwh=20&minutes=90&parking_minutes=0&start=2026-03-10T18:00&time_zone=Europe/Amsterdam"),
        ("tariff edit", reverse("dashboard:tariff-edit", args=["AC-1"])),
        ("onboarding", reverse("dashboard:onboarding")),
        ("audit log", reverse("dashboard:audit")),
        ("audit log, failed, 30 days", reverse("dashboard:audit") + f"?result=failed&date_from={month_ago}"),
        ("audit csv", reverse("dashboard:audit-export")),
        ("analytics, 30 days", reverse("dashboard:analytics")),
        ("analytics, 365 days, weeks", reverse("dashboard:analytics")
         + f"?date_from={today - timedelta(days=364)}&date_to={today}&bucket=week"),
        ("analytics csv hours, 30 d", reverse("dashboard:analytics-csv", args=["hours"])),
        ("analytics csv locations, 365 d", reverse("dashboard:analytics-csv", args=["locations"])
         + f"?date_from={today - timedelta(days=364)}&date_to={today}"),
        ("analytics csv hours, 365 d", reverse("dashboard:analytics-csv", args=["hours"])
         + f"?date_from={today - timedelta(days=364)}&date_to={today}"),
        ("analytics csv revenue, 365 d", reverse("dashboard:analytics-csv", args=["revenue"])
         + f"?date_from={today - timedelta(days=364)}&date_to={today}"),
        ("station log, every frame", reverse("dashboard:station", args=[station]) + "?view=frames&heartbeats=on"),
        ("sessions csv, location+month", reverse("dashboard:session-export")
         + f"?location={location}&started_from={month_ago}&started_to={today}"),
        ("tokens", reverse("dashboard:tokens")),
        ("tokens, search", reverse("dashboard:tokens") + "?q=EXM00001&status=valid"),
        ("tokens, partner page 500", reverse("dashboard:tokens") + "?ppage=500"),
        ("users", reverse("dashboard:users")),
        ("alerts", reverse("dashboard:alerts")),
        ("load groups", reverse("dashboard:load-groups")),
        ("firmware", reverse("dashboard:firmware")),
    ]


def measure(args) -> list[dict]:
    from django.contrib.auth.models import User
    from django.db import connection, reset_queries
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="bench"))
    results = []
    for name, url in pages():
        if args.only and args.only not in name:
            continue
        timings, queries = [], 0
        for attempt in range(args.repeat + 1):
            reset_queries()
            begin = time.perf_counter()
            response = client.get(url)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            elapsed = (time.perf_counter() - begin) * 1000
            if response.status_code != 200:
                raise SystemExit(f"{name}: HTTP {response.status_code} for {url}")
            if attempt:  # the first request warms caches (templates, plans)
                timings.append(elapsed)
            queries = len(connection.queries)
        timings.sort()
        p95 = timings[min(len(timings) - 1, int(round(0.95 * (len(timings) - 1))))]
        results.append({"page": name, "url": url, "p50": statistics.median(timings), "p95": p95,
                        "max": timings[-1], "queries": queries, "kb": len(body) / 1024})
        print(f"  {name:<32} p50 {results[-1]['p50']:7.1f} ms  p95 {p95:7.1f} ms  {queries:3d} queries", flush=True)
    return results


def table(results: list[dict]) -> str:
    lines = ["| page | p50 ms | p95 ms | max ms | queries | response KB | < 300 ms |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(f"| {r['page']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['max']:.1f} | {r['queries']} | "
                     f"{r['kb']:.0f} | {'yes' if r['p95'] < TARGET_MS else '**no**'} |")
    return "\n".join(lines)


def rollups(args) -> None:
    """Empty the analytics roll-ups (--no-rollups) or build those of the last year's closed days still missing."""
    from cpo.dashboard.services import analytics_rebuild
    from cpo.dashboard.models import AnalyticsDay

    if args.no_rollups:
        AnalyticsDay.objects.all().delete()  # days without one are computed live; their rows are ignored
        return
    today = datetime.now(UTC).date()
    built = set(AnalyticsDay.objects.values_list("day", flat=True))
    missing = [today - timedelta(days=n) for n in range(365, 0, -1) if today - timedelta(days=n) not in built]
    if missing:
        begin = time.perf_counter()
        for day in missing:
            analytics_rebuild(first=day, last=day)
        print(f"rolled up {len(missing)} closed days in {time.perf_counter() - begin:.1f} s")


def main():
    args = parse_args()
    fresh = ensure_database(args)
    os.environ["DATABASE_URL"] = f"{args.host_url}/{args.database}"
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "cpo.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from cpo.models import ChargingStation

    if fresh or not ChargingStation.objects.exists():
        print(f"generating {args.stations} stations, {args.sessions} sessions, {args.meter_values} meter values")
        generate(args)
    from django.db import connection

    with connection.cursor() as cursor:
        if args.gateway_index:
            cursor.execute("CREATE INDEX IF NOT EXISTS dashbench_tx_started_at ON ocpp_gateway_transaction (started_at)")
        else:
            cursor.execute("DROP INDEX IF EXISTS dashbench_tx_started_at")
        cursor.execute("ANALYZE ocpp_gateway_transaction")
    rollups(args)
    settings.DEBUG = True  # connection.queries counts queries; templates are cached by the loader either way
    settings.ALLOWED_HOSTS = ["testserver"]
    from ocpp_gateway.models import MeterValue, Transaction

    print(f"measuring {args.repeat} requests per page on {args.database}"
          f"{' with an index on transaction.started_at' if args.gateway_index else ''}: "
          f"{ChargingStation.objects.count()} stations, {Transaction.objects.count()} transactions, "
          f"{MeterValue.objects.count()} meter values")
    results = measure(args)
    print()
    print(table(results))
    slow = [r["page"] for r in results if r["p95"] >= TARGET_MS]
    print(f"\n{len(results) - len(slow)} of {len(results)} pages under {TARGET_MS} ms at p95" +
          (f"; over: {', '.join(slow)}" if slow else ""))


if __name__ == "__main__":
    main()
