"""Secrets that travel in OCPP payloads never reach anything staff can read (message log, audit log).

A charger's Basic-auth password is set with 1.6 ChangeConfiguration `AuthorizationKey` (security whitepaper) and
2.0.1 SetVariables `SecurityCtrlr.BasicAuthPassword`; a charger may echo them in GetConfiguration, GetVariables or
NotifyReport. Their values are replaced wherever they appear; everything else stays as it was."""

import json
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
        frame = json.loads(raw)
    except ValueError:
        return REDACTED  # unreadable and naming a secret: keep nothing of it
    return json.dumps(redact_secrets(frame), separators=(",", ":"))
