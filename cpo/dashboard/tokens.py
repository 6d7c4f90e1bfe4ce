"""Own RFID tokens as staff manage them: add, block and unblock, import a CSV. Every change is audited; tokens pushed
by roaming partners are theirs to change (OCPI mod_tokens) and are only read here."""

import csv
import io
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction

from cpo.dashboard.services import audit_record
from cpo.models import Token, TokenType

# Columns of an import file; only `uid` is required. `valid` reads yes/no, true/false, 1/0 (empty: yes).
IMPORT_COLUMNS = ["uid", "type", "contract_id", "visual_number", "group_id", "charging_priority", "valid"]
IMPORT_MAX_ROWS = 10_000
TRUE_WORDS, FALSE_WORDS = {"", "1", "yes", "y", "true", "valid"}, {"0", "no", "n", "false", "blocked"}


def token_create(*, user, data: dict) -> Token:
    token = Token(**data)
    token.full_clean()
    token.save()
    audit_record(user=user, action="TokenCreate", payload={"uid": token.uid, "type": token.type})
    return token


def token_block(*, user, token: Token, valid: bool) -> Token:
    """Block (valid=False) or unblock a token: chargers asking about it get Blocked from now on (or Accepted)."""
    if token.valid != valid:
        token.valid = valid
        token.save(update_fields=["valid", "last_updated"])
    audit_record(
        user=user, action="TokenUnblock" if valid else "TokenBlock", payload={"uid": token.uid, "type": token.type}
    )
    return token


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, what is wrong)

    @property
    def ok(self) -> bool:
        return not self.errors


def _row_values(row: dict) -> dict:
    values: dict = {}
    uid = (row.get("uid") or "").strip()
    if not uid:
        raise ValidationError("uid is empty")
    values["uid"] = uid
    kind = (row.get("type") or "").strip().upper() or TokenType.RFID
    if kind not in TokenType.values:
        raise ValidationError(f"type {kind!r} is not one of {', '.join(TokenType.values)}")
    values["type"] = kind
    for name in ("contract_id", "visual_number", "group_id"):
        if row.get(name) is not None:
            values[name] = row[name].strip()
    priority = (row.get("charging_priority") or "").strip()
    if priority:
        try:
            values["charging_priority"] = int(priority)
        except ValueError:
            raise ValidationError(f"charging_priority {priority!r} is not a whole number") from None
    valid = (row.get("valid") or "").strip().lower()
    if row.get("valid") is not None:
        if valid not in TRUE_WORDS | FALSE_WORDS:
            raise ValidationError(f"valid {row['valid']!r} is not yes or no")
        values["valid"] = valid in TRUE_WORDS
    return values


def tokens_import(*, user, text: str) -> ImportReport:
    """Create or update own tokens from CSV text (header row with IMPORT_COLUMNS names, `uid` required), matched on
    uid and type: importing the same file twice changes nothing. All or nothing: a file with any bad row imports
    nothing and says which lines are wrong."""
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip() for name in reader.fieldnames or []]
    if "uid" not in header:
        report.errors.append((1, f"the header has no uid column (columns: {', '.join(IMPORT_COLUMNS)})"))
        return report
    unknown = [name for name in header if name not in IMPORT_COLUMNS]
    if unknown:
        report.errors.append((1, f"unknown columns: {', '.join(unknown)} (known: {', '.join(IMPORT_COLUMNS)})"))
        return report
    reader.fieldnames = header
    rows: list[tuple[int, dict]] = []
    seen: dict[tuple[str, str], int] = {}
    for number, row in enumerate(reader, start=2):
        if number - 1 > IMPORT_MAX_ROWS:
            report.errors.append((number, f"more than {IMPORT_MAX_ROWS:,} rows: split the file"))
            break
        try:
            values = _row_values(row)
            key = (values["uid"], values["type"])
            if key in seen:
                raise ValidationError(f"{values['uid']} ({values['type']}) is on line {seen[key]} already")
            seen[key] = number
            Token(**{**values, "uid": values["uid"]}).clean_fields(exclude=["id"])
        except ValidationError as exc:
            report.errors.append((number, "; ".join(exc.messages)))
            continue
        rows.append((number, values))
    if report.errors:
        return report
    with transaction.atomic():
        existing = {(t.uid, t.type): t for t in Token.objects.filter(uid__in=[v["uid"] for _, v in rows])}
        for _, values in rows:
            token = existing.get((values["uid"], values["type"]))
            if token is None:
                Token.objects.create(**values)
                report.created += 1
                continue
            changed = {k: v for k, v in values.items() if getattr(token, k) != v}
            if changed:
                for name, value in changed.items():
                    setattr(token, name, value)
                token.save()
                report.updated += 1
            else:
                report.unchanged += 1
        audit_record(
            user=user,
            action="TokenImport",
            payload={"created": report.created, "updated": report.updated, "unchanged": report.unchanged},
        )
    return report
