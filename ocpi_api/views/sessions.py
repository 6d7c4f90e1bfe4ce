"""Sessions module, Sender interface (mod_sessions.asciidoc): the paginated list of the sessions of the partner's own
tokens. `date_from` is required for this module (2001 without it). Sessions are billing's; the OCPI projection is
`billing.selectors.session_as_ocpi`."""

from django.db.models import Q, QuerySet

from billing.models import Session
from billing.selectors import session_as_ocpi
from ocpi_api.envelope import InvalidParameters
from ocpi_api.modules import InterfaceRole, OcpiModule, ocpi_route
from ocpi_api.pagination import paginated_response
from ocpi_api.views.base import OcpiView


def of_partner_tokens(partner) -> Q:
    """Sessions and CDRs carry the party of the token used; a partner sees those of its own parties only."""
    condition = Q(pk__in=[])
    for country_code, party_id in partner.party_ids():
        condition |= Q(emsp_country_code__iexact=country_code, emsp_party_id__iexact=party_id)
    return condition


def session_list_of_partner(*, partner) -> QuerySet[Session]:
    return Session.objects.filter(of_partner_tokens(partner))


class SessionListView(OcpiView):
    def get(self, request):
        if not request.query_params.get("date_from"):
            raise InvalidParameters("date_from is required (mod_sessions: GET of the Sender interface)")
        return paginated_response(
            request=request,
            queryset=session_list_of_partner(partner=self.partner),
            serialize=lambda session: session_as_ocpi(session=session),
        )


MODULE = OcpiModule(
    identifier="sessions",
    role=InterfaceRole.SENDER,
    url_name="sessions",
    urlpatterns=[ocpi_route("sessions", SessionListView.as_view(), name="sessions")],
)
