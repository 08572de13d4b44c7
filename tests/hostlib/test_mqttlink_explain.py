"""What ``MqttLink.last_error`` says for the failures a real broker produces (the texts
below are OpenSSL's and the socket's, as seen against Mosquitto 2.0 in
``tests/traceedge/test_broker_wall.py``, which checks the same messages end to end)."""

from __future__ import annotations

import pytest

from hostlib.mqttlink import BrokerSettings, explain_failure, explain_refusal

PLAIN = BrokerSettings()
TLS = BrokerSettings(tls_ca="ca.pem")
MTLS = BrokerSettings(tls_ca="ca.pem", tls_cert="c.pem", tls_key="c.key")


@pytest.mark.parametrize(
    ("raw", "settings", "handshake", "cause"),
    [
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed "
            "certificate in certificate chain (_ssl.c:1006)",
            MTLS,
            True,
            "certificate verify failed (unknown CA)",
        ),
        (
            "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address mismatch, "
            "certificate is not valid for '127.0.0.1'. (_ssl.c:1006)",
            MTLS,
            True,
            "does not name 127.0.0.1",
        ),
        (
            "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required",
            TLS,
            False,
            "broker requires a client certificate",
        ),
        (
            "[SSL: SSLV3_ALERT_CERTIFICATE_REVOKED] sslv3 alert certificate revoked",
            MTLS,
            False,
            "certificate revoked",
        ),
        ("[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca", MTLS, False, "unknown CA"),
        ("EOF occurred in violation of protocol (_ssl.c:2427)", TLS, False, "set tls_cert"),
        ("EOF occurred in violation of protocol (_ssl.c:2427)", MTLS, False, "revoked or not"),
        ("[Errno 104] Connection reset by peer", MTLS, True, "a plain MQTT port?"),
        ("[Errno 104] Connection reset by peer", PLAIN, False, "a TLS port?"),
        ("The connection was lost.", PLAIN, False, "a TLS port?"),
        ("[Errno 111] Connection refused", PLAIN, True, "[Errno 111] Connection refused"),
    ],
)
def test_failure_names_the_cause(
    raw: str, settings: BrokerSettings, handshake: bool, cause: str
) -> None:
    assert cause in explain_failure(raw, settings, handshake)


class Code:
    def __init__(self, value: int) -> None:
        self.value = value

    def __str__(self) -> str:
        return f"code {self.value}"


@pytest.mark.parametrize(
    ("value", "cause"),
    [
        (5, "not authorised (bad username or password)"),
        (135, "not authorised (bad username or password)"),
        (4, "bad username or password"),
        (134, "bad username or password"),
        (3, "connection refused: code 3"),
    ],
)
def test_refusal_names_the_cause(value: int, cause: str) -> None:
    assert cause in explain_refusal(Code(value))
