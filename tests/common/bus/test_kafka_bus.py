"""KafkaBus settings from KafkaConfig (pure), and the error for an unreachable cluster."""

from __future__ import annotations

import pytest
from linksyn.common.bus import BrokerUnavailableError
from linksyn.common.bus.kafka import (
    KafkaBus,
    client_settings,
    consumer_settings,
    producer_settings,
)
from linksyn.common.config import KafkaConfig
from pydantic import SecretStr

from tests.tooling.ports import free_loopback_port


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

    from tests.tooling.tansu import TansuBroker

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


# ---- security settings reach kafka-python exactly (unit test of KafkaBus: the kafka-python classes are recorded) --

SASL_SECRET = "sasl-pw-7d1f0e-from-env"
SECURITY_KEYS = ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
                 "ssl_cafile", "ssl_certfile", "ssl_keyfile")


class _Recorded:
    """Stands in for one kafka-python class: records each construction's keyword arguments."""

    made: list[tuple[str, dict]] = []

    def __init__(self, **kwargs):
        self.made.append((type(self).__name__, kwargs))

    def close(self, *args, **kwargs):
        pass


class FakeProducer(_Recorded):
    def partitions_for(self, topic):
        return {0}

    def flush(self, timeout=None):
        pass


class FakeAdmin(_Recorded):
    def list_topics(self):
        return ["t"]

    def describe_topics(self, topics):
        return [{"name": t, "error_code": 0, "partitions": [{"partition": 0}]} for t in topics]

    def list_group_offsets(self, request):
        return {g: {} for g in request}


class FakeConsumer(_Recorded):
    def subscribe(self, topics, listener=None):
        pass

    def end_offsets(self, tps):
        return {tp: 0 for tp in tps}

    def assign(self, tps):
        pass

    def seek(self, tp, offset):
        pass

    def poll(self, timeout_ms=0, max_records=None):
        return {}

    def highwater(self, tp):
        return 0


@pytest.fixture
def recorded_kafka(monkeypatch):
    import linksyn.common.bus.kafka as kafka_module

    made: list[tuple[str, dict]] = []
    monkeypatch.setattr(_Recorded, "made", made)
    monkeypatch.setattr(kafka_module, "KafkaProducer", FakeProducer)
    monkeypatch.setattr(kafka_module, "KafkaAdminClient", FakeAdmin)
    monkeypatch.setattr(kafka_module, "KafkaConsumer", FakeConsumer)
    return made


def test_sasl_ssl_settings_from_the_environment_reach_every_kafka_client(recorded_kafka, monkeypatch, tmp_path):
    from linksyn.config import config_to_yaml, load_config

    monkeypatch.delenv("LINKSYN_CONFIG", raising=False)
    ca, cert, key = (str(tmp_path / n) for n in ("ca.pem", "client.pem", "client.key"))
    env = {
        "LINKSYN_BUS__KIND": "kafka",
        "LINKSYN_BUS__KAFKA__BOOTSTRAP": "k1:9093,k2:9093",
        "LINKSYN_BUS__KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "LINKSYN_BUS__KAFKA__SASL_MECHANISM": "SCRAM-SHA-256",
        "LINKSYN_BUS__KAFKA__SASL_USERNAME": "linksyn",
        "LINKSYN_BUS__KAFKA__SASL_PASSWORD": SASL_SECRET,
        "LINKSYN_BUS__KAFKA__SSL_CAFILE": ca,
        "LINKSYN_BUS__KAFKA__SSL_CERTFILE": cert,
        "LINKSYN_BUS__KAFKA__SSL_KEYFILE": key,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cfg = load_config()
    assert SASL_SECRET not in repr(cfg) and SASL_SECRET not in config_to_yaml(cfg)

    bus = KafkaBus(cfg.bus.kafka)
    bus.ensure_topics({"t": 1})  # the admin client
    bus.consumer("g", ["t"])  # a group member
    bus.group_lag("g", "t")  # the lag reader (a consumer outside any group)
    bus.close()

    expected = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "linksyn",
        "sasl_plain_password": SASL_SECRET,
        "ssl_cafile": ca,
        "ssl_certfile": cert,
        "ssl_keyfile": key,
    }
    kinds = [kind for kind, _ in recorded_kafka]
    assert sorted(kinds) == ["FakeAdmin", "FakeConsumer", "FakeConsumer", "FakeProducer"], kinds
    for kind, kwargs in recorded_kafka:
        assert {k: kwargs.get(k) for k in SECURITY_KEYS} == expected, kind
        # Nothing else security-related is invented on the way.
        assert {k for k in kwargs if k.startswith(("sasl_", "ssl_", "security_"))} == set(SECURITY_KEYS), kind
        assert kwargs["bootstrap_servers"] == ["k1:9093", "k2:9093"], kind


def test_plaintext_hands_no_security_settings_to_kafka_python(recorded_kafka):
    bus = KafkaBus(KafkaConfig(bootstrap="k1:9092"))
    bus.consumer("g", ["t"])
    bus.close()
    for kind, kwargs in recorded_kafka:
        assert kwargs["security_protocol"] == "PLAINTEXT", kind
        assert not [k for k in kwargs if k.startswith(("sasl_", "ssl_"))], kind
