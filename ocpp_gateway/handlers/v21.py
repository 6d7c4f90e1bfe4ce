"""OCPP 2.1: the 2.0.1 handlers answer with 2.1's messages and are validated against 2.1's schemas. The new
2.1-only messages a station may send (e.g. NotifyPeriodicEventStream, NotifyDERAlarm) are answered NotSupported
(recognised, not handled)."""

from ocpp.v21 import call, call_result

from ocpp_gateway.handlers.v201 import ChargePoint201


class ChargePoint21(ChargePoint201):
    ocpp_version = "2.1"
    ocpp_subprotocol = "ocpp2.1"
    call_module = call
    result_module = call_result
