"""WKubeTask's constructor: accli's keywords, holders, and early, clear ValueErrors."""

from __future__ import annotations

import os

import pytest
from acc_client import WKubeTask


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "job").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path / "job"


def test_no_arguments_or_only_name_is_a_holder():
    assert WKubeTask().is_holder
    assert WKubeTask(name="flow").is_holder
    assert not WKubeTask(docker_image="alpine", command="true").is_holder


def test_construction_does_no_upload_and_remembers_the_absolute_folder(folder):
    task = WKubeTask(job_folder="./job", base_stack="PYTHON3_7", command="python main.py", include="*.py")
    assert task.folder == (os.fspath(folder), "*.py", None)
    assert "repo_url" not in task.kwargs


def test_default_job_folder_is_the_current_directory(folder):
    task = WKubeTask(base_stack="PYTHON3_7", command="python main.py")
    assert task.folder == (os.getcwd(), None, None)


def test_docker_image_alone_needs_no_folder_but_an_explicit_one_is_uploaded(folder):
    assert WKubeTask(docker_image="alpine", command="true").folder is None
    assert WKubeTask(docker_image="alpine", command="true", job_folder="job").folder[0] == os.fspath(folder)


def test_a_repository_replaces_the_folder(folder):
    task = WKubeTask(base_stack="PYTHON3_7", command="x", repo_url="https://github.com/a/b.git", repo_branch="main")
    assert task.folder is None
    assert task.kwargs == {
        "repo_url": "https://github.com/a/b.git",
        "repo_branch": "main",
        "base_stack": "PYTHON3_7",
        "command": "x",
    }


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "x", "base_stack": "PYTHON3_7"}, "WKubeTask 'x': command is required"),
        ({"command": "  "}, "command is required"),
        ({"command": "true"}, "a stack is required"),
        ({"command": "true", "docker_image": "a", "base_stack": "B"}, "choose one stack"),
        ({"command": "true", "base_stack": "B", "job_folder": "missing"}, "invalid job_folder 'missing'"),
        ({"command": "true", "base_stack": "B", "repo_url": "https://x/y.git"}, "repo_branch .* is required"),
        ({"command": "true", "base_stack": "B", "repo_branch": "main"}, "repo_branch needs repo_url"),
        ({"command": "true", "docker_image": "a", "conf": {"A": 1}}, r"conf\['A'\] must be a string"),
        ({"command": "true", "docker_image": "a", "conf": {"a-b": "1"}}, "not a valid environment variable"),
        ({"command": "true", "docker_image": "a", "timeout": 1.5}, "whole number"),
        ({"command": "true", "docker_image": "a", "required_cores": 0}, "at least 0.01"),
        ({"command": "true", "docker_image": "a", "required_ram": "1G"}, "must be a number"),
        ({"command": "true", "docker_image": "a", "force_build": "yes"}, "True or False"),
        ({"command": "true", "docker_image": "a", "retries": -1}, "retries must be at least 0"),
        ({"retries": 2}, "command is required"),
    ],
)
def test_invalid_tasks_raise_clear_value_errors(folder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        WKubeTask(**kwargs)


def test_keywords_only_and_no_unknown_keywords():
    with pytest.raises(TypeError):
        WKubeTask("name")
    with pytest.raises(TypeError):
        WKubeTask(name="x", comand="typo")


def test_secrets_accept_numbers_as_strings(folder):
    task = WKubeTask(docker_image="alpine", command="true", job_secrets={"PORT": 8080})
    assert task.job_secrets == {"PORT": "8080"}


def test_conf_schema_and_deterministic_are_sent_as_the_routine_version_records_them():
    schema = {"type": "object", "properties": {"N": {"type": "integer", "default": 1}}}
    task = WKubeTask(name="count", docker_image="img", command="echo $N", conf_schema=schema, deterministic=False)
    assert not task.is_holder
    node = task.description["nodes"][0]
    assert node["conf_schema"] == schema and node["deterministic"] is False
    plain = WKubeTask(name="plain", docker_image="img", command="true").description["nodes"][0]
    assert "conf_schema" not in plain and "deterministic" not in plain, "unset keywords are not sent"


@pytest.mark.parametrize(
    ("kw", "needle"), [({"conf_schema": "[]"}, "conf_schema must be"), ({"deterministic": 1}, "deterministic must be")]
)
def test_conf_schema_and_deterministic_are_checked(kw, needle):
    with pytest.raises(ValueError, match=needle):
        WKubeTask(name="x", docker_image="img", command="true", **kw)
