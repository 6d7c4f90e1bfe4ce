"""Secrets that travel in OCPP payloads never reach anything staff can read (message log, audit log).

A charger's Basic-auth password is set with 1.6 ChangeConfiguration `AuthorizationKey` (security whitepaper) and
2.0.1 SetVariables `SecurityCtrlr.BasicAuthPassword`; a charger may echo them in GetConfiguration, GetVariables or
NotifyReport. Their values are replaced wherever they appear; everything else stays as it was."""

import json
import logging
from typing import Any

REDACTED = "<redacted>"
SECRET_CONFIGURATION_KEYS = frozenset({"AuthorizationKey"})
SECRET_VARIABLES = frozenset({"BasicAuthPassword"})
_NEEDLES = tuple(SECRET_CONFIGURATION_KEYS | SECRET_VARIABLES)


def redact_secrets(value: Any) -> Any:
    """A copy of an OCPP payload (or any JSON value) with secret values replaced by REDACTED."""
    if isinstance(value, list):
        return [redact_secrets(item) for item in value]
    if not isinstance(value, dict):
        return value
    result = {key: redact_secrets(item) for key, item in value.items()}
    if result.get("key") in SECRET_CONFIGURATION_KEYS and "value" in result:  # 1.6 KeyValue, ChangeConfiguration
        result["value"] = REDACTED
    variable = result.get("variable")
    if isinstance(variable, dict) and variable.get("name") in SECRET_VARIABLES:  # 2.0.1
        if "attributeValue" in result:
            result["attributeValue"] = REDACTED
        for attribute in result.get("variableAttribute") or []:
            if isinstance(attribute, dict) and "value" in attribute:
                attribute["value"] = REDACTED
    return result


def redact_frame(raw: str) -> str:
    """An OCPP-J frame with its secrets redacted; frames that cannot hold one are returned as they are, unparsed
    (the message log sees every frame)."""
    if not any(needle in raw for needle in _NEEDLES):
        return raw
    try:
        return json.dumps(redact_secrets(json.loads(raw)), separators=(",", ":"))
    except (ValueError, RecursionError):  # unreadable (or nested too deep to walk) and naming a secret
        return REDACTED


def _redact_log_argument(value: Any) -> Any:
    if isinstance(value, str):
        return redact_frame(value)
    return REDACTED if any(needle in str(value) for needle in _NEEDLES) else value


class SecretsLogFilter(logging.Filter):
    """On the ocpp library's logger, which logs every frame it sends and receives at INFO (OCPP_LIB_LOG_LEVEL):
    secrets in those frames are redacted before any handler sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_log_argument(arg) for arg in record.args)
        return True
