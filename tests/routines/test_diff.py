"""routines.diff: what changed between two version specs, field by field (plain asserts, no database)."""

from routines.diff import diff_specs, manifest_sha

BASE = {
    "stack": {"kind": "docker_image", "image": "python:3.12"},
    "code": {"kind": "none"},
    "command": "python main.py",
    "build_timeout": None,
    "conf": {"N": "3"},
    "resources": {"required_cores": 1, "timeout": 60},
}


def test_identical_specs_have_no_changes():
    assert diff_specs(BASE, dict(BASE)) == []


def test_a_changed_command_is_one_section_with_the_old_and_new_line():
    sections = diff_specs(BASE, {**BASE, "command": "python main.py --fast"})
    assert [s["field"] for s in sections] == ["command"]
    assert sections[0]["lines"] == [("-", "python main.py"), ("+", "python main.py --fast")]


def test_maps_are_compared_key_by_key():
    new = {**BASE, "conf": {"N": "4", "M": "x"}, "resources": {"required_cores": 2, "timeout": 60}}
    by_field = {s["field"]: s["lines"] for s in diff_specs(BASE, new)}
    assert by_field["conf"] == [("+", "M = x"), ("-", "N = 3"), ("+", "N = 4")]
    assert by_field["resources"] == [("-", "required_cores = 1"), ("+", "required_cores = 2")]


def test_a_schema_is_compared_line_by_line():
    old = {**BASE, "conf_schema": {"type": "object", "properties": {"N": {"type": "integer"}}}}
    new = {**BASE, "conf_schema": {"type": "object", "properties": {"N": {"type": "string"}}}}
    (section,) = diff_specs(old, new)
    assert section["field"] == "conf_schema"
    assert ("-", '      "type": "integer"') in section["lines"] and ("+", '      "type": "string"') in section["lines"]


def test_two_manifests_list_files_added_removed_and_changed():
    a = {**BASE, "code": {"kind": "jobstore", "url": "s3accjobstore://manifest_" + "a" * 40 + ".json", "ref": ""}}
    b = {**BASE, "code": {"kind": "jobstore", "url": "s3accjobstore://manifest_" + "b" * 40 + ".json", "ref": ""}}
    old_files = {"main.py": "1" * 40, "old.txt": "2" * 40, "same.txt": "3" * 40}
    new_files = {"main.py": "4" * 40, "new.txt": "5" * 40, "same.txt": "3" * 40}
    (section,) = diff_specs(a, b, old_files=old_files, new_files=new_files)
    assert section["lines"] == [("~", "main.py (changed)"), ("+", "new.txt (added)"), ("-", "old.txt (removed)")]
    assert manifest_sha(a) == "a" * 40 and manifest_sha(BASE) is None


def test_without_manifests_the_code_source_is_compared_by_url_and_ref():
    git = {**BASE, "code": {"kind": "git", "url": "https://example.org/r.git", "ref": "v1"}}
    (section,) = diff_specs(git, {**git, "code": {**git["code"], "ref": "v2"}})
    assert section["lines"] == [("-", "ref = v1"), ("+", "ref = v2")]


def test_turning_reuse_off_is_a_change():
    (section,) = diff_specs(BASE, {**BASE, "deterministic": False})
    assert section["field"] == "deterministic"
