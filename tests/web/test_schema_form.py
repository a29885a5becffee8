"""web.schema_form: pure functions behind the Run form."""

from web import schema_form as sf

SCHEMA = {
    "type": "object",
    "properties": {
        "N": {"type": "integer", "default": 2},
        "ON": {"type": "boolean"},
        "TAGS": {"type": "array", "items": {"type": "string"}},
        "PW": {"type": "string", "format": "password"},
        "KEY": {"type": "string", "writeOnly": True},
    },
    "required": ["N"],
}


def test_secret_fields_are_password_or_write_only():
    assert sf.secret_fields(SCHEMA) == {"PW", "KEY"}
    assert sf.secret_fields(None) == set()


def test_start_value_types_stored_strings_and_drops_secrets():
    start = sf.start_value(SCHEMA, {"N": "5", "ON": "true", "TAGS": '["a"]', "PW": "x", "OTHER": "y"})
    assert start == {"N": 5, "ON": True, "TAGS": ["a"]}
    assert sf.start_value(SCHEMA, {}, {"N": 7, "PW": "typed"}) == {"N": 7}


def test_coerce_leaves_what_does_not_read_as_the_type():
    assert sf.coerce("x", {"type": "integer"}) == "x"
    assert sf.coerce("1.5", {"type": "number"}) == 1.5
    assert sf.coerce("[", {"type": "array"}) == "["


def test_validate_reports_by_editor_path():
    errors = sf.validate(SCHEMA, {"N": "x", "TAGS": [1]})
    assert set(errors) == {"root.N", "root.TAGS.0"}
    assert sf.validate(SCHEMA, {}) == {"root.N": ["Required."]}


def test_split_turns_values_into_environment_strings():
    conf, secrets, errors = sf.split(SCHEMA, {"N": 3, "ON": False, "TAGS": ["a", "b"], "PW": "p", "KEY": ""})
    assert conf == {"N": "3", "ON": "false", "TAGS": '["a","b"]'}
    assert secrets == {"PW": "p"} and errors == {}


def test_key_value_editor_rows():
    value = {"conf": [{"name": "A", "value": "1"}], "secrets": [{"name": "S", "value": "s"}]}
    assert sf.validate(sf.KV_SCHEMA, value) == {}
    assert sf.split(None, value) == ({"A": "1"}, {"S": "s"}, {})
    assert sf.start_value(None, {"A": "1"}, {"conf": [], "secrets": [{"name": "S", "value": "s"}]}) == {
        "conf": [],
        "secrets": [{"name": "S", "value": ""}],
    }
