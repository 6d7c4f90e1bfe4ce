"""Charger passwords in OCPP payloads never reach the message log or the audit log that staff read."""

import json

from ocpp_gateway.redaction import REDACTED, redact_frame, redact_secrets


def test_a_1_6_authorization_key_set_by_change_configuration_is_redacted():
    raw = json.dumps([2, "m1", "ChangeConfiguration", {"key": "AuthorizationKey", "value": "0123456789abcdef"}])
    assert json.loads(redact_frame(raw)) == [
        2,
        "m1",
        "ChangeConfiguration",
        {"key": "AuthorizationKey", "value": REDACTED},
    ]


def test_a_2_0_1_basic_auth_password_in_set_variables_is_redacted_and_other_variables_kept():
    payload = {
        "setVariableData": [
            {
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
                "attributeValue": "s3cret-s3cret-s3cret",
            },
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
                "attributeValue": "300",
            },
        ]
    }
    redacted = json.loads(redact_frame(json.dumps([2, "m2", "SetVariables", payload])))[3]["setVariableData"]
    assert redacted[0]["attributeValue"] == REDACTED
    assert redacted[1]["attributeValue"] == "300"


def test_secrets_echoed_by_a_charger_in_reports_and_configuration_are_redacted():
    configuration = [
        3,
        "m3",
        {
            "configurationKey": [
                {"key": "AuthorizationKey", "readonly": False, "value": "0123456789abcdef"},
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            ]
        },
    ]
    keys = json.loads(redact_frame(json.dumps(configuration)))[2]["configurationKey"]
    assert [k["value"] for k in keys] == [REDACTED, "300"]
    report = [
        2,
        "m4",
        "NotifyReport",
        {
            "requestId": 1,
            "seqNo": 0,
            "generatedAt": "2026-12-01T10:00:00Z",
            "reportData": [
                {
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "BasicAuthPassword"},
                    "variableAttribute": [{"value": "s3cret-s3cret-s3cret"}],
                }
            ],
        },
    ]
    data = json.loads(redact_frame(json.dumps(report)))[3]["reportData"][0]
    assert data["variableAttribute"] == [{"value": REDACTED}]


def test_frames_without_a_secret_are_kept_byte_for_byte():
    raw = '[2, "m5", "Heartbeat", {}]'
    assert redact_frame(raw) is raw


def test_an_unreadable_frame_naming_a_secret_is_not_kept():
    assert redact_frame('[2, "m6", "ChangeConfiguration", {"key": "AuthorizationKey", "value": "abc') == REDACTED


def test_audit_payloads_are_redacted_the_same_way():
    assert redact_secrets({"key": "AuthorizationKey", "value": "x" * 16}) == {
        "key": "AuthorizationKey",
        "value": REDACTED,
    }
