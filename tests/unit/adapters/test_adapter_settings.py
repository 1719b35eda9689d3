"""Adapter tables of [[services]]: validated at load, errors name the file and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from adapters.settings import RestSettings, SapSettings, load_adapter_settings
from crossway.core.errors import ConfigError

SAP = """
[[services]]
id = "EE/GOV/70000003/business/business.v1.BusinessRegister"
adapter = "sap_odata"
address = "https://sap.example/sap/opu/odata/sap/ZBUSINESS_SRV"

[services.sap]
sap_client = "100"
auth = "basic"
username = "CROSSWAY"
password_env = "SAP_PASSWORD"
properties = { id = "ID" }

[services.sap.methods.GetCompany]
operation = "read"
entity_set = "Companies"
"""


def _load(text: str, tmp_path: Path, environ: dict[str, str] | None = None) -> RestSettings | SapSettings | None:
    source = tmp_path / "gateway.toml"
    entry = tomllib.loads(text)["services"][0]
    return load_adapter_settings(source, "services[0]", entry, entry["adapter"], entry["address"], environ or {})


def test_a_sap_table_loads_with_the_password_from_the_named_variable_never_shown(tmp_path: Path) -> None:
    settings = _load(SAP, tmp_path, {"SAP_PASSWORD": "s3cret"})
    assert isinstance(settings, SapSettings)
    assert settings.service_url.endswith("ZBUSINESS_SRV/")
    assert (settings.sap_client, settings.username, settings.password) == ("100", "CROSSWAY", "s3cret")
    assert settings.properties == {"id": "ID"}
    assert "s3cret" not in repr(settings)


def test_an_unset_password_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(SAP, tmp_path)
    assert "gateway.toml: [services[0].sap] password_env: names SAP_PASSWORD" in raised.value.message


def test_an_unknown_operation_names_the_method_table_and_key(tmp_path: Path) -> None:
    text = SAP.replace('operation = "read"', 'operation = "upsert"')
    with pytest.raises(ConfigError) as raised:
        _load(text, tmp_path, {"SAP_PASSWORD": "x"})
    assert "[services[0].sap.methods.GetCompany] operation: must be one of" in raised.value.message


def test_a_misspelt_key_is_refused_rather_than_ignored(tmp_path: Path) -> None:
    text = SAP.replace('entity_set = "Companies"', 'entityset = "Companies"')
    with pytest.raises(ConfigError) as raised:
        _load(text, tmp_path, {"SAP_PASSWORD": "x"})
    assert "[services[0].sap.methods.GetCompany] entityset: unknown key" in raised.value.message
    assert "did you mean `entity_set`?" in raised.value.hint


def test_a_rest_table_maps_methods_to_verbs_and_paths(tmp_path: Path) -> None:
    text = """
[[services]]
id = "EE/GOV/70000003/business/business.v1.BusinessRegister"
adapter = "rest"
address = "http://127.0.0.1:8080/api"
[services.rest.methods.GetCompany]
http = "GET /companies/{id}"
[services.rest.methods.CreateCompany]
http = "POST /companies"
body = "company"
"""
    settings = _load(text, tmp_path)
    assert isinstance(settings, RestSettings)
    assert settings.base_url == "http://127.0.0.1:8080/api/"
    get, create = settings.methods["GetCompany"], settings.methods["CreateCompany"]
    assert (get.http_method, get.path, get.body) == ("GET", "/companies/{id}", "")
    assert (create.http_method, create.body) == ("POST", "company")


def test_a_rest_mapping_without_a_verb_is_refused(tmp_path: Path) -> None:
    text = """
[[services]]
id = "EE/GOV/70000003/business/business.v1.BusinessRegister"
adapter = "rest"
address = "http://127.0.0.1:8080/api"
[services.rest.methods.GetCompany]
http = "/companies/{id}"
"""
    with pytest.raises(ConfigError) as raised:
        _load(text, tmp_path)
    assert "[services[0].rest.methods.GetCompany] http:" in raised.value.message
