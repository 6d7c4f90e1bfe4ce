"""One handler class per OCPP version (handlers.base: routing and calls on the `ocpp` library's public parts)."""

from ocpp_gateway.handlers.v16 import ChargePoint16
from ocpp_gateway.handlers.v21 import ChargePoint21
from ocpp_gateway.handlers.v201 import ChargePoint201

HANDLERS = {"ocpp1.6": ChargePoint16, "ocpp2.0.1": ChargePoint201, "ocpp2.1": ChargePoint21}

__all__ = ["HANDLERS", "ChargePoint16", "ChargePoint201", "ChargePoint21"]
