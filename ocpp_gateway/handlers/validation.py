"""Every payload in and out is checked against the official schema of its version before it is used or sent.

Schemas are compiled by fastjsonschema (~20x faster than the `ocpp` library's jsonschema validator), on the event
loop: a frame is at most OCPP_MAX_FRAME_BYTES and checking it costs less than a hop to a thread. Only a payload the
compiled schema refuses (or one without a schema) goes through the library's public `validate_payload`, which raises
the error code the specification defines for it, or accepts it (the compiled validator also checks `format`, which
the library's does not). Nothing of the library is patched.
"""

import functools

import fastjsonschema
from ocpp import messages as ocpp_messages
from ocpp.messages import Call, CallResult


@functools.cache
def compiled_schema(message_type_id: int, action: str, ocpp_version: str):
    """The official schema the library ships for this message, compiled; None when the version has no such
    message."""
    try:
        schema = ocpp_messages.get_validator(message_type_id, action, ocpp_version).schema
    except (OSError, ValueError):
        return None
    return fastjsonschema.compile(schema)


async def payload_validate(message: Call | CallResult, ocpp_version: str) -> None:
    """Raise the OCPPError the specification names when `message.payload` does not fit its schema."""
    validator = compiled_schema(message.message_type_id, message.action, ocpp_version)
    if validator is not None:
        try:
            validator(message.payload)
            return
        except fastjsonschema.JsonSchemaException:
            pass
    await ocpp_messages.validate_payload(message, ocpp_version)
