"""The generated NATS permissions: each identity's own subjects, and nothing that destroys."""

from __future__ import annotations

import pytest
from nats.js.api import StreamConfig

from crossway.backbone import EVIDENCE_STREAMS, audit_subject, checkpoint_subject, kv_stream, policy_versions_subject
from crossway.bus import Names, delivery_state_bucket, delivery_streams
from crossway.core.ids import GatewayId
from crossway.natsauth import NatsUser, grant_for, render_authorization, users_for
from crossway.natsstreams import evidence_config, weaknesses
from crossway.security.natspki import NatsIdentity, NatsRole

TAX = NatsIdentity.gateway("EE/GOV/70000001/gw1")
POP = NatsIdentity.gateway("EE/GOV/70000002/gw1")
ROLES = [
    TAX,
    NatsIdentity(NatsRole.REGISTRY, "EE"),
    NatsIdentity(NatsRole.COSIGNER, "registry"),
    NatsIdentity(NatsRole.INDEX, "main"),
    NatsIdentity(NatsRole.AUDITOR, "alice"),
]


def test_a_gateway_publishes_its_own_subjects_and_none_of_another_gateways() -> None:
    grant = grant_for(TAX)
    assert audit_subject(str(TAX.name)) in grant.publish
    assert checkpoint_subject(TAX.name, "signed") in grant.publish
    assert policy_versions_subject(TAX.name) in grant.publish
    everything = " ".join(grant.publish + grant.subscribe)
    assert "70000002" not in everything
    assert grant.subscribe[0] == TAX.inbox_prefix + ".>"


@pytest.mark.parametrize("identity", ROLES, ids=str)
def test_no_running_identity_may_destroy_or_reconfigure_a_stream_or_read_with_an_unnamed_consumer(
    identity: NatsIdentity,
) -> None:
    grant = grant_for(identity, members=["EE/GOV/70000001"])
    for subject in grant.publish:
        assert not subject.startswith(("$JS.API.STREAM.DELETE", "$JS.API.STREAM.PURGE", "$JS.API.STREAM.UPDATE"))
        assert not subject.startswith("$JS.API.STREAM.MSG.DELETE")
        assert subject != "$JS.API.>" and subject != ">"
        if subject.startswith("$JS.API.CONSUMER.CREATE."):
            # Unnamed (or any-named) consumers only on the streams of the identity's own member,
            # which no other member reads: anywhere else a name could update another's consumer.
            stream = subject.split(".")[4]
            if len(subject.split(".")) < 6 or subject.endswith(f"{stream}.>"):
                assert identity.role is NatsRole.GATEWAY, subject
                assert stream in _own_bus_streams(identity), f"{identity} may create an unnamed consumer: {subject}"
    assert all(s.startswith(identity.inbox_prefix) or not s.startswith("_INBOX") for s in grant.subscribe)


def _own_bus_streams(identity: NatsIdentity) -> tuple[str, ...]:
    names = Names(GatewayId.parse(identity.name))
    return (*names.streams, kv_stream(names.state_bucket))


def test_a_gateway_reads_and_writes_the_message_bus_of_its_own_member_only() -> None:
    grant = grant_for(TAX)
    own = _own_bus_streams(TAX)
    others = _own_bus_streams(POP)
    everything = " ".join(grant.publish)
    assert all(stream in everything for stream in own)
    assert not any(stream in everything for stream in others)
    tax_tokens = Names(GatewayId.parse(TAX.name)).tokens
    for subject in grant.publish:
        if subject.startswith(("crossway.delivery.", "$KV.crossway_delivery")):
            assert tax_tokens in subject, subject  # its own gateway's subjects and keys only


def test_only_the_admin_holds_the_jetstream_api() -> None:
    assert grant_for(NatsIdentity(NatsRole.ADMIN, "ops")).publish == ("$JS.API.>",)


def test_the_registry_may_create_but_never_alter_its_buckets() -> None:
    grant = grant_for(NatsIdentity(NatsRole.REGISTRY, "EE"), members=["EE/GOV/70000001"])
    creates = {s.split(".")[-1] for s in grant.publish if s.startswith("$JS.API.STREAM.CREATE.")}
    owned = {spec.name for spec in delivery_streams("EE/GOV/70000001")}
    owned.add(kv_stream(delivery_state_bucket("EE/GOV/70000001")))
    assert owned <= creates
    assert all(s.startswith("KV_crossway-") for s in creates - owned)
    assert not any(s.startswith("$JS.API.STREAM.UPDATE") for s in grant.publish)


def test_the_users_file_always_has_a_user_no_certificate_names_and_refuses_odd_text() -> None:
    text = render_authorization(users_for([(TAX, 0x1F)]))
    assert 'user: "crossway-nats://nobody"' in text and f'"{TAX.user(0x1F)}"' in text
    bad = NatsUser('x" , allow: [">"]', grant_for(TAX))
    with pytest.raises(ValueError):
        render_authorization([bad])


def test_a_weakened_evidence_stream_is_named_field_by_field() -> None:
    wanted = evidence_config(EVIDENCE_STREAMS[0], 3)
    silently = StreamConfig(
        name=wanted.name,
        subjects=wanted.subjects,
        deny_delete=True,
        deny_purge=False,  # what allow_msg_schedules does to deny_purge, without an error
        allow_rollup_hdrs=True,
        max_age=3600,
        num_replicas=1,
    )
    found = " ".join(weaknesses(silently, wanted))
    for what in ("deny_purge is off", "roll-ups", "max_age", "replica"):
        assert what in found
    assert weaknesses(wanted, wanted) == []


def test_the_registry_log_id_is_the_one_the_registry_uses() -> None:
    from crossway.backbone import registry_log_gateway
    from registry.changes import registry_log_id

    assert registry_log_gateway("EE") == str(registry_log_id("EE"))
    grant = grant_for(NatsIdentity(NatsRole.REGISTRY, "EE"))
    assert audit_subject(registry_log_gateway("EE")) in grant.publish
