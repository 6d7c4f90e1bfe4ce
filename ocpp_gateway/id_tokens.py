"""OCPI TokenType <-> OCPP 2.0.1 IdTokenEnumType: the one mapping between a token's kind in OCPI (and in our own
`cpo.Token`, which uses the OCPI names) and the idToken type a charger sends or is sent.

OCPP 1.6 idTags carry no type (the empty string here); most are RFID cards.
"""

# OCPI TokenType -> the IdTokenEnumType a 2.0.1 charger is given for it (RemoteStart, ReserveNow).
ID_TOKEN_TYPE_OF_TOKEN_TYPE = {
    "RFID": "ISO14443",
    "APP_USER": "Central",
    "AD_HOC_USER": "Central",
    "OTHER": "Central",
}

# IdTokenEnumType -> the OCPI TokenTypes a token of that type can be, most likely first.
TOKEN_TYPES_OF_ID_TOKEN_TYPE = {
    "": ["RFID", "APP_USER", "AD_HOC_USER", "OTHER"],
    "ISO14443": ["RFID"],
    "ISO15693": ["RFID"],
    "Central": ["APP_USER", "AD_HOC_USER", "OTHER", "RFID"],
    "eMAID": ["APP_USER", "AD_HOC_USER", "RFID", "OTHER"],
    "KeyCode": ["OTHER"],
    "Local": ["OTHER", "RFID"],
    "MacAddress": ["OTHER"],
}


def id_token_type_for(*, token_type: str) -> str:
    """The 2.0.1 idToken type of an OCPI token type (Central for what has no closer match)."""
    return ID_TOKEN_TYPE_OF_TOKEN_TYPE.get(token_type, "Central")


def token_types_for(*, id_token_type: str) -> list[str]:
    """The OCPI token types a charger's idToken may stand for, most likely first."""
    return TOKEN_TYPES_OF_ID_TOKEN_TYPE.get(id_token_type, TOKEN_TYPES_OF_ID_TOKEN_TYPE[""])


def token_type_for(*, id_token_type: str) -> str:
    """The OCPI token type of a charger's idToken when no authorizer said (e.g. for a CDR's token): the most likely
    one; OTHER for the types OCPI has no name for (NoAuthorization, unknown values)."""
    candidates = TOKEN_TYPES_OF_ID_TOKEN_TYPE.get(id_token_type)
    return candidates[0] if candidates else "OTHER"
