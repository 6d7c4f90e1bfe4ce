"""Input validation of OCPI objects partners send us (field names, types, lengths and enums of the spec)."""

from django.core.validators import RegexValidator
from rest_framework import serializers

from ocpi_api.models import Role

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
                raise serializers.ValidationError("every role needs a unique combination of role, party_id and country_code")
            seen.add(key)
        return roles


def credentials_validate(data) -> dict:
    """A Credentials object, validated; raises DRF ValidationError (-> 2001)."""
    serializer = CredentialsSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
