"""files.mappings: parsing input_mappings / output_mappings (pure, no database)."""

import pytest

from files.mappings import Mapping, MappingError, parse_input_mappings, parse_output_mappings


def test_input_pair_splits_after_the_acc_prefix():
    assert parse_input_mappings("acc://demo/xyz/:/code/input/") == [
        Mapping(source="acc://demo/xyz/", destination="/code/input/", direction="input")
    ]


def test_output_pair_splits_at_the_first_colon():
    [pair] = parse_output_mappings("/code/out/:acc://out")
    assert (pair.source, pair.destination) == ("/code/out/", "acc://out")
    assert pair.container_path == "/code/out/" and pair.acc_url == "acc://out"


def test_several_pairs_with_blanks_and_trailing_semicolon():
    pairs = parse_input_mappings(" acc://a.csv:/code/a.csv ; acc://data/:/code/data/ ;")
    assert [(p.source, p.destination) for p in pairs] == [
        ("acc://a.csv", "/code/a.csv"),
        ("acc://data/", "/code/data/"),
    ]


def test_empty_value_means_no_mappings():
    assert parse_input_mappings("") == [] and parse_output_mappings(" ; ") == []


def test_trailing_slash_marks_a_folder():
    folder, file = parse_output_mappings("/code/out/:acc://out;/code/r.csv:acc://r.csv")
    assert folder.is_folder and not file.is_folder


def test_container_path_is_normalised_and_keeps_its_trailing_slash():
    [pair] = parse_input_mappings("acc://x/:/code//./input/")
    assert pair.destination == "/code/input/"


def test_mapping_is_frozen():
    [pair] = parse_input_mappings("acc://x:/code/x")
    with pytest.raises(AttributeError):
        pair.source = "acc://y"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("demo/xyz:/code/input", "must start with acc://"),
        ("acc://demo/xyz", "no ':'"),
        ("acc://demo/xyz:code/input", "must be absolute"),
        ("acc://demo/xyz:/code/../etc", "must not contain '..'"),
        ("acc://../other:/code/in", "must not contain '..'"),
        ("acc://demo:/", "not the container root"),
        ("acc://demo:", "empty container path"),
        ("acc://demo:/code/\x00x", "NUL"),
    ],
)
def test_bad_input_mappings_say_what_is_wrong_and_show_the_syntax(value, message):
    with pytest.raises(MappingError) as err:
        parse_input_mappings(value)
    assert message in str(err.value)
    assert "acc://<path>:/container/path" in str(err.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/code/out", "no ':'"),
        ("/code/out:/elsewhere", "must store into project storage"),
        ("code/out:acc://out", "must be absolute"),
        ("/code/../out:acc://out", "must not contain '..'"),
        ("/code/out:acc://a/../../b", "must not contain '..'"),
    ],
)
def test_bad_output_mappings_say_what_is_wrong_and_show_the_syntax(value, message):
    with pytest.raises(MappingError) as err:
        parse_output_mappings(value)
    assert message in str(err.value)
    assert "/container/path:acc://<path>" in str(err.value)


def test_mapping_error_is_a_value_error():
    assert issubclass(MappingError, ValueError)
