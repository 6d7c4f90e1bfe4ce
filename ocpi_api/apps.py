from django.apps import AppConfig


class OcpiApiConfig(AppConfig):
    name = "ocpi_api"
    verbose_name = "OCPI roaming"

    def ready(self):
        from ocpi_api.authorization import partner_token_authorize
        from ocpp_gateway.authorization import authorizer_register

        # After the gateway's own (local) tokens: the tokens EMSPs pushed, with real-time authorization.
        authorizer_register(partner_token_authorize)
