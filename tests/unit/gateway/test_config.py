"""The gateway's TOML file: loaded once, paths relative to the file, every error naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossway.core.errors import ConfigError
from crossway.core.ids import GatewayId, ServiceId, SubsystemId
from gateway.shared.config import load_config

VALID = """\
[gateway]
id = "EE/GOV/70000001/gw1"
data_dir = "data"

[listen]
client = "127.0.0.1:8080"
peer = "0.0.0.0:8443"

[nats]
url = "tls://nats.internal:4222"
ca = "nats/ca.pem"
certificate = "keys/nats.crt"
key = "keys/nats.key"

[registry]
anchor = "../registry/anchor.json"
source = "file:config.bin"

[keys]
tls_key = "keys/tls.key"
tls_certificate = "keys/tls.crt"
signing_key = "keys/signing.key"
signing_certificate = "keys/signing.crt"
encryption_key = "keys/encryption.key"

[client_auth.jwt]
issuer = "https://idp.example"
audience = "crossway:gw1"
public_keys = ["idp.pem"]

[[client_auth.certificates]]
subsystem = "EE/GOV/70000001/tax"
certificate = "clients/tax.pem"

[[services]]
id = "EE/GOV/70000001/population/population.v1.PersonRegistry"
address = "127.0.0.1:50051"
timeout_s = 5

[audit]
strict = true
replicas = 3

[security]
max_clock_skew_s = 30
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "etc" / "gateway.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def expect_error(path: Path, *fragments: str, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ or {})
    message = caught.value.message
    assert str(path.resolve()) in message
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


def test_a_valid_file_loads_with_paths_resolved_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    config = load_config(path, environ={})
    etc = (tmp_path / "etc").resolve()
    assert config.source == path.resolve()
    assert config.gateway_id == GatewayId.parse("EE/GOV/70000001/gw1")
    assert config.member == "EE/GOV/70000001"
    assert config.data_dir == etc / "data"
    assert (config.client_listen, config.peer_listen) == ("127.0.0.1:8080", "0.0.0.0:8443")
    assert config.nats_url == "tls://nats.internal:4222"
    assert (config.nats_ca, config.nats_certificate, config.nats_key) == (
        etc / "nats" / "ca.pem",
        etc / "keys" / "nats.crt",
        etc / "keys" / "nats.key",
    )
    assert config.registry_anchor == (tmp_path / "registry" / "anchor.json").resolve()
    assert config.registry_source == "file:config.bin"
    assert config.tls_key == etc / "keys" / "tls.key"
    assert config.signing_certificate == etc / "keys" / "signing.crt"
    assert config.encryption_key == etc / "keys" / "encryption.key"
    assert config.key_passphrase is None
    [client] = config.client_certificates
    assert client.subsystem == SubsystemId.parse("EE/GOV/70000001/tax")
    assert client.certificate == etc / "clients" / "tax.pem"
    assert config.jwt is not None and config.jwt.public_keys == (etc / "idp.pem",)
    assert config.jwt.algorithms == ("ES256", "EdDSA")
    [service] = config.services
    assert service.service == ServiceId.parse("EE/GOV/70000001/population/population.v1.PersonRegistry")
    assert (service.adapter, service.address, service.timeout_s) == ("grpc", "127.0.0.1:50051", 5.0)
    assert (config.audit.strict, config.audit.replicas, config.audit.spool_dir) == (
        True,
        3,
        etc / "data" / "audit-spool",
    )
    assert config.max_clock_skew_s == 30
    assert config.default_timeout_s == 30.0
    assert config.policy_dir is None and config.tracing_export is None


def test_optional_sections_take_their_defaults(tmp_path: Path) -> None:
    minimal = "\n".join(
        line
        for line in VALID.split("\n[client_auth.jwt]")[0].splitlines()
        if not line.startswith(("encryption_key", "url", "[nats]", "ca =", "certificate =", "key ="))
    )
    config = load_config(write(tmp_path, minimal), environ={})
    assert config.nats_url == ""  # "" starts an embedded nats-server
    assert config.encryption_key is None
    assert config.jwt is None and config.client_certificates == () and config.services == ()
    assert (config.audit.strict, config.audit.replicas, config.audit.stream) == (False, 1, "CROSSWAY_AUDIT")
    assert config.event_loop == "uvloop"
    assert config.peer_multiplex is True
    assert config.peer_connections == 1


def test_multiplexing_to_provider_gateways_can_be_switched_off(tmp_path: Path) -> None:
    text = VALID.replace('data_dir = "data"', 'data_dir = "data"\npeer_multiplex = false')
    assert load_config(write(tmp_path, text), environ={}).peer_multiplex is False


def test_the_standard_event_loop_can_be_chosen(tmp_path: Path) -> None:
    text = VALID.replace('data_dir = "data"', 'data_dir = "data"\nevent_loop = "asyncio"')
    assert load_config(write(tmp_path, text), environ={}).event_loop == "asyncio"


@pytest.mark.parametrize("section", ["gateway", "listen", "registry", "keys"])
def test_a_missing_required_section_names_the_file_and_the_section(tmp_path: Path, section: str) -> None:
    text = VALID.replace(f"[{section}]", "[unused]")
    error = expect_error(write(tmp_path, text), f"[top] {section}: section is missing")
    assert f"[{section}]" in error.hint


def test_a_missing_required_key_names_the_section_and_the_key(tmp_path: Path) -> None:
    text = VALID.replace('tls_key = "keys/tls.key"\n', "")
    expect_error(write(tmp_path, text), "[keys] tls_key: is required")


def test_a_value_of_the_wrong_type_names_the_key_and_the_type(tmp_path: Path) -> None:
    text = VALID.replace('data_dir = "data"', "data_dir = 42")
    expect_error(write(tmp_path, text), "[gateway] data_dir: must be a string, got int")


def test_a_section_that_is_not_a_table_is_rejected(tmp_path: Path) -> None:
    text = 'keys = "inline"\n' + VALID.replace("[keys]", "[unused]")
    expect_error(write(tmp_path, text), "[top] keys: must be a table")


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("strict = true", 'strict = "yes"', "[audit] strict: must be true or false"),
        ("timeout_s = 5", "timeout_s = 0", "[services[0]] timeout_s: must be a positive number"),
        ("timeout_s = 5", "timeout_s = true", "[services[0]] timeout_s: must be a positive number"),
        ('data_dir = "data"', 'data_dir = "data"\nevent_loop = "tokio"', "[gateway] event_loop: must be one of uvloop"),
        ('data_dir = "data"', 'data_dir = "data"\npeer_connections = 0', "[gateway] peer_connections: must be a whole"),
        ('data_dir = "data"', 'data_dir = "data"\nworkers = 300', "[gateway] workers: must be a whole number from 1"),
    ],
)
def test_bad_scalar_values_name_section_and_key(tmp_path: Path, old: str, new: str, fragment: str) -> None:
    expect_error(write(tmp_path, VALID.replace(old, new)), fragment)


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ('id = "EE/GOV/70000001/gw1"', 'id = "EE/GOV/70000001"', "[gateway] id: gateway id"),
        ('id = "EE/GOV/70000001/gw1"', 'id = "ee/GOV/70000001/gw1"', "[gateway] id: instance 'ee'"),
        ('subsystem = "EE/GOV/70000001/tax"', 'subsystem = "EE/GOV/70000001/*"', "subsystem: subsystem '*'"),
        (
            'id = "EE/GOV/70000001/population/population.v1.PersonRegistry"',
            'id = "EE/GOV/70000001/population"',
            "[services[0]] id: service id",
        ),
    ],
)
def test_a_bad_identifier_names_the_key_and_what_is_wrong_with_it(
    tmp_path: Path, old: str, new: str, fragment: str
) -> None:
    error = expect_error(write(tmp_path, VALID.replace(old, new)), fragment)
    assert error.hint  # the identifier's own hint is passed on


def test_an_unknown_adapter_names_the_file_the_service_and_the_adapter(tmp_path: Path) -> None:
    text = VALID.replace('address = "127.0.0.1:50051"', 'adapter = "soap"\naddress = "127.0.0.1:50051"')
    error = expect_error(
        write(tmp_path, text), "EE/GOV/70000001/population/population.v1.PersonRegistry", "adapter 'soap'"
    )
    assert 'adapter = "grpc"' in error.hint


def test_jwt_without_public_keys_is_rejected(tmp_path: Path) -> None:
    text = VALID.replace('public_keys = ["idp.pem"]', "public_keys = []")
    expect_error(write(tmp_path, text), "[client_auth.jwt] public_keys: must list at least one PEM file")


def test_jwt_algorithms_given_as_a_string_instead_of_a_list_is_rejected_naming_the_key(tmp_path: Path) -> None:
    text = VALID.replace('public_keys = ["idp.pem"]', 'public_keys = ["idp.pem"]\nalgorithms = "ES256"')
    expect_error(write(tmp_path, text), "algorithms")


def test_a_nats_url_without_the_gateways_nats_identity_is_refused(tmp_path: Path) -> None:
    text = VALID.replace('certificate = "keys/nats.crt"\n', "").replace('key = "keys/nats.key"\n', "")
    error = expect_error(write(tmp_path, text), "[nats] certificate", "nobody connects anonymously")
    assert "registry" in error.hint


def test_a_cluster_is_given_as_a_list_of_urls(tmp_path: Path) -> None:
    text = VALID.replace(
        'url = "tls://nats.internal:4222"', 'urls = ["tls://n1:4222", "tls://n2:4222", "tls://n3:4222"]'
    )
    assert load_config(write(tmp_path, text), environ={}).nats_url == "tls://n1:4222,tls://n2:4222,tls://n3:4222"


def test_an_empty_list_of_nats_urls_is_refused(tmp_path: Path) -> None:
    text = VALID.replace('url = "tls://nats.internal:4222"', "urls = []")
    expect_error(write(tmp_path, text), "[nats] urls")


def test_the_environment_overrides_the_nats_url(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), environ={"CROSSWAY_NATS_URL": "nats://override:4222"})
    assert config.nats_url == "nats://override:4222"


def test_an_empty_environment_override_keeps_the_file_value(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), environ={"CROSSWAY_NATS_URL": ""})
    assert config.nats_url == "tls://nats.internal:4222"


def test_only_the_environment_passed_in_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSWAY_NATS_URL", "nats://from-process-env:4222")
    assert load_config(write(tmp_path, VALID), environ={}).nats_url == "tls://nats.internal:4222"


def test_a_passphrase_is_read_from_the_named_variable_and_never_shown(tmp_path: Path) -> None:
    secret = "correct horse battery staple"
    text = VALID.replace("[keys]\n", '[keys]\npassphrase_env = "GW_KEY_PASS"\n')
    config = load_config(write(tmp_path, text), environ={"GW_KEY_PASS": secret})
    assert config.key_passphrase == secret.encode()
    assert secret not in repr(config) and secret not in str(config)
    assert "key_passphrase" not in repr(config)


def test_a_passphrase_variable_that_is_not_set_fails_naming_the_variable(tmp_path: Path) -> None:
    text = VALID.replace("[keys]\n", '[keys]\npassphrase_env = "GW_KEY_PASS"\n')
    error = expect_error(write(tmp_path, text), "[keys] passphrase_env: names GW_KEY_PASS, which is not set")
    assert "export GW_KEY_PASS" in error.hint


def test_a_file_that_is_not_toml_names_the_file(tmp_path: Path) -> None:
    expect_error(write(tmp_path, "[gateway\nid = 1"), "not valid TOML")


def test_a_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=r"cannot read gateway configuration .*missing\.toml"):
        load_config(path, environ={})


@pytest.mark.parametrize(
    ("typo", "where", "suggestion"),
    [
        # The issue's own case: the key is `algorithms`; the default list must not take over.
        ('[client_auth.jwt]\nalgorithm = "ES256"', "[client_auth.jwt] algorithm", "algorithms"),
        ('[listen]\npeers = "0.0.0.0:8443"', "[listen] peers", "peer"),
        ("[security]\nmax_clock_skew = 5", "[security] max_clock_skew", "max_clock_skew_s"),
        ("[gateway]\nworker = 2", "[gateway] worker", "workers"),
        ("[limits]\nmax_message_byte = 1048576", "[limits] max_message_byte", "max_message_bytes"),
        ('[[services]]\nadress = "127.0.0.1:1"', "[services[0]] adress", "address"),
        (
            '[[client_auth.certificates]]\ncertficate = "x.pem"',
            "[client_auth.certificates[0]] certficate",
            "certificate",
        ),
        ('[polices]\ndir = "policies"', "[top] polices", "policies"),
    ],
)
def test_an_unknown_key_in_any_table_is_refused_with_file_table_key_and_the_nearest_key(
    tmp_path: Path, typo: str, where: str, suggestion: str
) -> None:
    header, _, line = typo.partition("\n")
    if header in VALID and not header.startswith("[["):
        text = VALID.replace(header, f"{header}\n{line}", 1)
    elif header.startswith("[[client_auth"):
        text = VALID.replace(
            '[[client_auth.certificates]]\nsubsystem = "EE/GOV/70000001/tax"\ncertificate = "clients/tax.pem"',
            f'{header}\nsubsystem = "EE/GOV/70000001/tax"\n{line}',
        )
    elif header.startswith("[["):
        text = VALID.replace('address = "127.0.0.1:50051"', line)
    else:
        text = VALID + f"\n{typo}\n"
    error = expect_error(write(tmp_path, text), f"{where}: unknown key")
    assert f"did you mean `{suggestion}`?" in error.hint


def test_limits_default_to_grpcs_four_mebibytes_and_can_be_set(tmp_path: Path) -> None:
    defaults = load_config(write(tmp_path, VALID), environ={}).limits
    assert (defaults.max_message_bytes, defaults.max_deadline_s) == (4 * 1024 * 1024, 600.0)
    assert (defaults.max_metadata_entries, defaults.max_metadata_bytes) == (64, 8192)
    text = VALID + "\n[limits]\nmax_message_bytes = 1048576\nmax_deadline_s = 60\nmax_metadata_entries = 16\n"
    limits = load_config(write(tmp_path, text), environ={}).limits
    assert (limits.max_message_bytes, limits.max_deadline_s, limits.max_metadata_entries) == (1048576, 60.0, 16)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("max_message_bytes = 10", "[limits] max_message_bytes: must be a whole number of bytes"),
        ("max_message_bytes = 4.5", "[limits] max_message_bytes: must be a whole number of bytes"),
        ("max_deadline_s = 0", "[limits] max_deadline_s: must be a positive number"),
        ("max_deadline_s = 10", "[limits] max_deadline_s: is 10 s, shorter than [security] default_timeout_s"),
        ("max_metadata_entries = 100000", "[limits] max_metadata_entries: must be a whole number from 8 to 1024"),
    ],
)
def test_a_limit_out_of_range_names_the_key(tmp_path: Path, line: str, fragment: str) -> None:
    expect_error(write(tmp_path, VALID + f"\n[limits]\n{line}\n"), fragment)
