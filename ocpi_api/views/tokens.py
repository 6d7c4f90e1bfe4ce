"""Tokens module, Receiver interface (mod_tokens.asciidoc): GET/PUT/PATCH
/ocpi/2.2.1/tokens/{country_code}/{party_id}/{token_uid}[?type={type}]."""

from drf_spectacular.utils import extend_schema

from ocpi_api import selectors, services
from ocpi_api.envelope import InvalidParameters, UnknownToken, ocpi_response
from ocpi_api.models import TokenType
from ocpi_api.modules import InterfaceRole, OcpiModule, ocpi_route
from ocpi_api.serializers import OcpiEnvelopeSerializer, TokenSerializer, token_validate
from ocpi_api.views.base import OcpiView, UnknownEndpointView


def token_type_param(request) -> str:
    """`?type=`, RFID when omitted; 2001 when not a TokenType."""
    token_type = request.query_params.get("type") or TokenType.RFID
    if token_type not in TokenType.values:
        raise InvalidParameters(f"type {token_type!r} is not a TokenType")
    return token_type


class TokenView(OcpiView):
    def get(self, request, country_code: str, party_id: str, token_uid: str):
        token_type = token_type_param(request)
        services.check_partner_party(partner=self.partner, country_code=country_code, party_id=party_id)
        token = selectors.partner_token_get(
            partner=self.partner, country_code=country_code, party_id=party_id, uid=token_uid, token_type=token_type
        )
        if token is None:
            raise UnknownToken(f"Unknown token {token_uid!r} ({token_type})")
        return ocpi_response(selectors.partner_token_as_ocpi(token))

    @extend_schema(request=TokenSerializer, responses=OcpiEnvelopeSerializer)
    def put(self, request, country_code: str, party_id: str, token_uid: str):
        token_type = token_type_param(request)
        services.check_partner_party(partner=self.partner, country_code=country_code, party_id=party_id)
        token = token_validate(request.data)
        _, created = services.partner_token_put(
            partner=self.partner,
            country_code=country_code,
            party_id=party_id,
            uid=token_uid,
            token_type=token_type,
            token=token,
        )
        return ocpi_response(http_status=201 if created else 200)

    @extend_schema(request=TokenSerializer, responses=OcpiEnvelopeSerializer)
    def patch(self, request, country_code: str, party_id: str, token_uid: str):
        token_type = token_type_param(request)
        services.check_partner_party(partner=self.partner, country_code=country_code, party_id=party_id)
        changes = token_validate(request.data, partial=True)
        services.partner_token_patch(
            partner=self.partner,
            country_code=country_code,
            party_id=party_id,
            uid=token_uid,
            token_type=token_type,
            changes=changes,
        )
        return ocpi_response()


MODULE = OcpiModule(
    identifier="tokens",
    role=InterfaceRole.RECEIVER,
    url_name="tokens",
    urlpatterns=[
        # The module's URL: objects live below it, there is no list on a Receiver interface.
        ocpi_route("tokens", UnknownEndpointView.as_view(), name="tokens"),
        ocpi_route(
            r"tokens/(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<token_uid>[^/]+)",
            TokenView.as_view(),
            name="token",
        ),
    ],
)
