"""Loading refuses bad policy files before they go live, naming file:line and a hint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import METHODS, BundleFactory

from policies import PolicyInvalid, load_policy_dir, schema_text
from policies.schema import BASE_SCHEMA_PATH, CONTEXT_ATTRIBUTES

EXAMPLES = Path(__file__).parents[3] / "policies" / "examples"


def test_the_worked_example_directory_loads_with_its_ids_and_local_groups() -> None:
    bundle = load_policy_dir(EXAMPLES, METHODS, version="v7")
    assert bundle.version == "v7"
    assert [p.id for p in bundle.policies][:2] == ["tax-reads-persons", "statistics-all-methods"]
    assert bundle.local_groups["EE/GOV/70000010"] == frozenset({"auditors"})


def test_a_misspelt_context_attribute_is_rejected_with_file_line_and_a_suggestion(make_bundle: BundleFactory) -> None:
    text = '// reads\npermit (principal, action, resource)\nwhen {\n  context.purpos == "tax"\n};\n'
    with pytest.raises(PolicyInvalid) as caught:
        make_bundle({"tax.cedar": text})
    assert caught.value.message.startswith("tax.cedar:4: policy tax#1:")
    assert "`purpos`" in caught.value.message
    assert "did you mean `purpose`" in caught.value.hint
    assert caught.value.code == "policy.invalid"


def test_an_unknown_method_is_rejected_with_file_line_and_the_served_methods(make_bundle: BundleFactory) -> None:
    text = (
        'permit (principal, action, resource);\n\n@id("typo")\npermit (\n  principal,\n'
        '  action == Crossway::Action::"population.v1.PersonRegistry/GetPersn",\n  resource\n);\n'
    )
    with pytest.raises(PolicyInvalid) as caught:
        make_bundle({"a.cedar": text})
    assert caught.value.message.startswith("a.cedar:6: policy typo: unrecognized action")
    assert "GetPersn" in caught.value.message
    assert "did you mean `population.v1.PersonRegistry/GetPerson`" in caught.value.hint


def test_a_misspelt_entity_type_is_rejected_with_a_suggestion(make_bundle: BundleFactory) -> None:
    with pytest.raises(PolicyInvalid) as caught:
        make_bundle('permit (principal in Crossway::Membr::"EE/GOV/1", action, resource);')
    assert caught.value.message.startswith("access.cedar:1:")
    assert "Crossway::Member" in caught.value.hint


def test_reading_a_claim_without_has_tag_is_rejected(make_bundle: BundleFactory) -> None:
    with pytest.raises(PolicyInvalid) as caught:
        make_bundle('permit (principal, action, resource) when { context.user.getTag("role") == "x" };')
    assert "hasTag" in caught.value.hint


def test_a_syntax_error_names_the_line_of_the_broken_policy(make_bundle: BundleFactory) -> None:
    text = (
        "permit (principal, action, resource);\n"
        '// "quoted; not a policy end"\n'
        "\n"
        "permit (principal,, action, resource);\n"
    )
    with pytest.raises(PolicyInvalid, match=r"access\.cedar:4: syntax error"):
        make_bundle(text)


def test_duplicate_ids_across_files_are_rejected_naming_both_places(make_bundle: BundleFactory) -> None:
    one = '@id("read")\npermit (principal, action, resource);'
    two = '\n\n@id("read")\nforbid (principal, action, resource);'
    with pytest.raises(PolicyInvalid) as caught:
        make_bundle({"one.cedar": one, "two.cedar": two})
    assert caught.value.message == "two.cedar:3: duplicate policy id 'read' (first used at one.cedar:1)"


def test_an_explicit_id_may_not_collide_with_a_generated_one(make_bundle: BundleFactory) -> None:
    text = 'permit (principal, action, resource);\n@id("access#1") permit (principal, action, resource);'
    with pytest.raises(PolicyInvalid, match="duplicate policy id 'access#1'"):
        make_bundle(text)


def test_policies_without_an_id_are_named_by_file_stem_and_position(make_bundle: BundleFactory) -> None:
    text = (
        "permit (principal, action, resource);\n"
        '@id("x") permit (principal, action, resource);\n'
        "forbid (principal, action, resource) when { false };"
    )
    bundle = make_bundle({"b.cedar": text})
    assert [(p.id, p.line) for p in bundle.policies] == [("b#1", 1), ("x", 2), ("b#3", 3)]


def test_templates_are_refused(make_bundle: BundleFactory) -> None:
    with pytest.raises(PolicyInvalid, match="template"):
        make_bundle("permit (principal == ?principal, action, resource);")


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        ("{", "local-groups.json:1: not JSON"),
        ('{"bad name": []}', "group name 'bad name'"),
        ('{"g": ["EE/GOV/1/*"]}', "group 'g'"),
        ('{"g": "EE/GOV/1"}', "must be a list"),
    ],
)
def test_a_bad_local_groups_file_is_rejected(make_bundle: BundleFactory, groups: str, expected: str) -> None:
    with pytest.raises(PolicyInvalid, match=re.escape(expected)):
        make_bundle({"local-groups.json": groups})


def test_an_unexpected_file_name_is_rejected(make_bundle: BundleFactory) -> None:
    with pytest.raises(PolicyInvalid, match="not a policy file"):
        make_bundle({"access.txt": ""})


def test_the_generated_schema_has_an_action_per_method_and_a_group_per_service() -> None:
    text = schema_text(METHODS)
    assert 'action "population.v1.PersonRegistry/*";' in text
    assert 'action "population.v1.PersonRegistry/GetPerson" in [Action::"population.v1.PersonRegistry/*"]' in text
    assert 'action "vehicles.v1.Registry/GetVehicle" in [Action::"vehicles.v1.Registry/*"]' in text


def test_the_hint_list_of_context_attributes_matches_the_schema_file() -> None:
    schema = BASE_SCHEMA_PATH.read_text()
    body = schema[schema.index("type CallContext") :]
    body = body[: body.index("};")]
    declared = tuple(re.findall(r"^\s+(\w+):", body, flags=re.MULTILINE))
    assert declared == CONTEXT_ATTRIBUTES


def test_the_line_finder_skips_semicolons_in_strings_and_comments() -> None:
    from policies.source import split_policies

    text = (
        '// a comment; with "quotes\n'
        'permit (principal, action, resource) when { context.purpose == "a;\\"b;" };\n'
        "\n"
        "  forbid (principal, action, resource); // trailing; comment\n"
        "permit (principal, action, resource) when { 8 / 2 == 4 }"
    )
    assert [span.line for span in split_policies(text)] == [2, 4, 5]
