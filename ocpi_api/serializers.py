"""Input validation of OCPI objects partners send us (field names, types, lengths and enums of the spec)."""

from django.core.validators import RegexValidator
from rest_framework import serializers

from ocpi_api.models import ConnectionStatus, ProfileType, Role, TokenType, WhitelistType

printable_ascii = RegexValidator(r"^[\x21-\x7e]+$", "only printable non-whitespace ASCII is allowed")


class StrictCharField(serializers.CharField):
    """A string that must be a JSON string: DRF's CharField would quietly turn numbers and booleans into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ImageSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=255)
    thumbnail = serializers.URLField(max_length=255, required=False)
    category = serializers.ChoiceField(
        choices=["CHARGER", "ENTRANCE", "LOCATION", "NETWORK", "OPERATOR", "OTHER", "OWNER"]
    )
    type = StrictCharField(max_length=4)
    width = serializers.IntegerField(required=False, max_value=99999, min_value=0)
    height = serializers.IntegerField(required=False, max_value=99999, min_value=0)


class BusinessDetailsSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    website = serializers.URLField(max_length=255, required=False)
    logo = ImageSerializer(required=False)


class CredentialsRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
    business_details = BusinessDetailsSerializer()
    party_id = StrictCharField(min_length=3, max_length=3, validators=[printable_ascii])
    country_code = StrictCharField(min_length=2, max_length=2, validators=[printable_ascii])


class CredentialsSerializer(serializers.Serializer):
    token = StrictCharField(max_length=64, trim_whitespace=False, validators=[printable_ascii])
    url = serializers.URLField(max_length=255)
    roles = CredentialsRoleSerializer(many=True, allow_empty=False)

    def validate_roles(self, roles):
        seen = set()
        for role in roles:
            key = (role["role"], role["country_code"].upper(), role["party_id"].upper())
            if key in seen:
                raise serializers.ValidationError(
                    "every role needs a unique combination of role, party_id and country_code"
                )
            seen.add(key)
        return roles


def credentials_validate(data) -> dict:
    """A Credentials object, validated; raises DRF ValidationError (-> 2001)."""
    serializer = CredentialsSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean only (DRF's BooleanField would take "yes", 1, "on")."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


def _optional_text(max_length: int, **kwargs) -> StrictCharField:
    return StrictCharField(max_length=max_length, required=False, allow_null=True, allow_blank=True, **kwargs)


class EnergyContractSerializer(serializers.Serializer):
    supplier_name = StrictCharField(max_length=64)
    contract_id = _optional_text(64)


class TokenSerializer(serializers.Serializer):
    """The OCPI Token object (mod_tokens). With partial=True (PATCH) only `last_updated` is required."""

    country_code = StrictCharField(min_length=2, max_length=2, validators=[printable_ascii])
    party_id = StrictCharField(min_length=3, max_length=3, validators=[printable_ascii])
    uid = StrictCharField(max_length=36, validators=[printable_ascii])
    type = serializers.ChoiceField(choices=TokenType.choices)
    contract_id = StrictCharField(max_length=36, validators=[printable_ascii])
    visual_number = _optional_text(64)
    issuer = StrictCharField(max_length=64)
    group_id = _optional_text(36)
    valid = StrictBooleanField()
    whitelist = serializers.ChoiceField(choices=WhitelistType.choices)
    language = _optional_text(2)
    default_profile_type = serializers.ChoiceField(choices=ProfileType.choices, required=False, allow_null=True)
    energy_contract = EnergyContractSerializer(required=False, allow_null=True)
    last_updated = serializers.DateTimeField()

    def validate(self, attrs):
        if self.partial and "last_updated" not in attrs:
            raise serializers.ValidationError({"last_updated": "required in a PATCH"})
        return attrs


def token_validate(data, *, partial: bool = False) -> dict:
    if not isinstance(data, dict):
        raise serializers.ValidationError("a Token object is expected")
    serializer = TokenSerializer(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ClientInfoSerializer(serializers.Serializer):
    party_id = StrictCharField(min_length=3, max_length=3, validators=[printable_ascii])
    country_code = StrictCharField(min_length=2, max_length=2, validators=[printable_ascii])
    role = serializers.ChoiceField(choices=Role.choices)
    status = serializers.ChoiceField(choices=ConnectionStatus.choices)
    last_updated = serializers.DateTimeField()


def client_info_validate(data) -> dict:
    if not isinstance(data, dict):
        raise serializers.ValidationError("a ClientInfo object is expected")
    serializer = ClientInfoSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class OcpiEnvelopeSerializer(serializers.Serializer):
    """The OCPI response format, for the OpenAPI description (every answer, errors included)."""

    data = serializers.JSONField(allow_null=True, help_text="Object or list, depending on the request")
    status_code = serializers.IntegerField(help_text="1000 success, 2xxx client errors, 3xxx server errors")
    status_message = serializers.CharField(allow_null=True, required=False)
    timestamp = serializers.DateTimeField()
