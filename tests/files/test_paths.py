"""files.services.clean_relpath and resolve_acc_url: every path stays inside its project."""

import pytest

from accelerator.errors import InvalidInput
from files.services import clean_relpath, resolve_acc_url
from routines.models import Project

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("given", "expected"),
    [("", ""), (".", ""), ("a/b.csv", "a/b.csv"), ("a//./b/", "a/b"), ("./x", "x")],
)
def test_clean_relpath_normalises(given, expected):
    assert clean_relpath(given) == expected


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "a/../../x", "a/..", "a\\b", "a\x00b", "a\nb", "x" * 300])
def test_clean_relpath_refuses_escapes_and_odd_characters(bad):
    with pytest.raises(InvalidInput):
        clean_relpath(bad)


def test_acc_url_with_the_project_slug_names_a_path_in_the_project(project):
    assert resolve_acc_url("acc://demo/xyz/data.csv", project=project) == "xyz/data.csv"


def test_acc_url_without_a_slug_is_relative_to_the_project_root(project):
    assert resolve_acc_url("acc://out", project=project) == "out"


def test_acc_url_keeps_a_trailing_slash_for_folders(project):
    assert resolve_acc_url("acc://demo/xyz/", project=project) == "xyz/"


def test_acc_url_of_just_the_slug_is_the_root(project):
    assert resolve_acc_url("acc://demo", project=project) == ""
    assert resolve_acc_url("acc://demo/", project=project) == ""


def test_acc_url_into_another_project_is_refused(project):
    Project.objects.create(slug="secret", name="Secret")
    with pytest.raises(InvalidInput) as err:
        resolve_acc_url("acc://secret/data.csv", project=project)
    assert "outside project demo" in err.value.detail
    assert "only their own project's files" in err.value.detail


def test_acc_url_with_dotdot_is_refused(project):
    with pytest.raises(InvalidInput) as err:
        resolve_acc_url("acc://demo/../other/x", project=project)
    assert "'..'" in err.value.detail


def test_non_acc_url_is_refused(project):
    with pytest.raises(InvalidInput) as err:
        resolve_acc_url("s3://bucket/x", project=project)
    assert "acc://<path>" in err.value.detail
