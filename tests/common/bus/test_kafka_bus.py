"""KafkaBus settings from KafkaConfig (pure), and the error for an unreachable cluster."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from linksyn.common.bus import BrokerUnavailableError
from linksyn.common.bus.kafka import KafkaBus, client_settings, consumer_settings, producer_settings
from linksyn.common.net import free_loopback_port
from linksyn.common.config import KafkaConfig


def test_plaintext_settings():
    s = client_settings(KafkaConfig(bootstrap="a:9092, b:9093", request_timeout_ms=1234))
    assert s["bootstrap_servers"] == ["a:9092", "b:9093"]
    assert s["security_protocol"] == "PLAINTEXT"
    assert s["request_timeout_ms"] == 1234
    assert not any(k.startswith(("sasl_", "ssl_")) for k in s)


def test_sasl_ssl_settings_unwrap_the_secret():
    cfg = KafkaConfig(
        bootstrap="kafka:9093",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="linksyn",
        sasl_password=SecretStr("s3cret"),
        ssl_cafile="/etc/ca.pem",
    )
    s = client_settings(cfg)
    assert s["sasl_mechanism"] == "SCRAM-SHA-512"
    assert s["sasl_plain_username"] == "linksyn"
    assert s["sasl_plain_password"] == "s3cret"
    assert s["ssl_cafile"] == "/etc/ca.pem"
    assert "s3cret" not in repr(cfg)


def test_mutual_tls_settings():
    s = client_settings(
        KafkaConfig(security_protocol="SSL", ssl_cafile="ca.pem", ssl_certfile="c.pem", ssl_keyfile="k.pem")
    )
    assert (s["ssl_cafile"], s["ssl_certfile"], s["ssl_keyfile"]) == ("ca.pem", "c.pem", "k.pem")
    assert "sasl_mechanism" not in s


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"security_protocol": "SASL_PLAINTEXT"}, "needs kafka.sasl_mechanism"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"}, "sasl_password"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"}, "OAUTHBEARER"),
        ({"ssl_cafile": "ca.pem"}, "does not use TLS"),
        ({"bootstrap": " , "}, "bootstrap is empty"),
    ],
)
def test_inconsistent_security_settings_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        client_settings(KafkaConfig(**fields))


def test_consumer_and_producer_settings_carry_the_delivery_guarantees():
    cfg = KafkaConfig(session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_interval_ms=10000, linger_ms=7)
    c = consumer_settings(cfg, "extractor")
    assert c["group_id"] == "extractor"
    assert c["enable_auto_commit"] is False
    assert c["auto_offset_reset"] == "earliest"
    assert (c["session_timeout_ms"], c["heartbeat_interval_ms"], c["max_poll_interval_ms"]) == (6000, 1000, 10000)
    p = producer_settings(cfg)
    assert p["enable_idempotence"] is True
    assert p["acks"] == "all"
    assert p["linger_ms"] == 7


def test_an_unreachable_cluster_is_named_in_the_error():
    bootstrap = f"127.0.0.1:{free_loopback_port()}"  # nothing listens there
    with pytest.raises(BrokerUnavailableError, match=bootstrap.replace(".", r"\.")):
        KafkaBus(KafkaConfig(bootstrap=bootstrap, request_timeout_ms=1500))


@pytest.mark.kafka
def test_flush_raises_when_records_cannot_be_stored():
    from linksyn.common.bus import ProduceError
    from linksyn.common.bus.tansu import TansuBroker

    with TansuBroker() as broker:  # its own broker: this test stops it
        bus = KafkaBus(KafkaConfig(bootstrap=broker.bootstrap, request_timeout_ms=3000))
        bus.ensure_topics({"t": 1})
        bus.produce("t", b"stored")
        bus.flush(timeout_s=10)
        broker.stop()
        bus.produce("t", b"lost")
        with pytest.raises(ProduceError, match=broker.bootstrap.replace(".", r"\.")):
            bus.flush(timeout_s=2)
        with pytest.raises(ProduceError):
            bus.close()  # close flushes too, and still releases the connections
