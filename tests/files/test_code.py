"""files.code: materialising a routine's code from a manifest, a zip or a git ref."""

import io
import os
import stat
import subprocess

import pytest

from accelerator.errors import InvalidInput, NotFound
from files import code, jobstore
from tests.files.helpers import put_folder, sha1, zip_bytes

pytestmark = pytest.mark.django_db


def mode_of(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def put_zip(project, members: dict[str, bytes], mode: int = 0o600) -> str:
    data = zip_bytes(members, mode)
    jobstore.put(project=project, filename=f"{sha1(data)}.zip", stream=io.BytesIO(data))
    return sha1(data)


# --- jobstore manifest ----------------------------------------------------------------------------------------


def test_manifest_is_materialised_with_executable_mode_restored(project, tmp_path):
    digest = put_folder(project, {"run.sh": (b"#!/bin/sh\necho hi\n", 0o100755), "data/x.csv": (b"1,2\n", 0o100644)})
    dest = tmp_path / "code"
    info = code.materialize(project=project, repo_url=f"s3accjobstore://manifest_{digest}.json", dest=dest)
    assert info == {"kind": "jobstore", "manifest": digest}
    assert (dest / "run.sh").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert mode_of(dest / "run.sh") == 0o755 and mode_of(dest / "data/x.csv") == 0o644
    assert subprocess.run([dest / "run.sh"], capture_output=True).stdout == b"hi\n"


def test_manifest_is_never_written_through_a_symlink_in_dest(project, tmp_path):
    digest = put_folder(project, {"sub/evil.txt": (b"x", 0o100644)})
    outside, dest = tmp_path / "outside", tmp_path / "code"
    outside.mkdir()
    dest.mkdir()
    os.symlink(outside, dest / "sub")
    with pytest.raises(InvalidInput):
        code.materialize(project=project, repo_url=f"s3accjobstore://manifest_{digest}.json", dest=dest)
    assert not (outside / "evil.txt").exists()


def test_missing_manifest_is_not_found(project, tmp_path):
    with pytest.raises(NotFound):
        code.materialize(project=project, repo_url=f"s3accjobstore://manifest_{'a' * 40}.json", dest=tmp_path)


# --- zip (accli <= 1.1.4) ----------------------------------------------------------------------------------------


def test_zip_is_extracted_with_its_modes(project, tmp_path):
    digest = put_zip(project, {"main.py": b"print(1)\n", "pkg/mod.py": b"x = 1\n"})
    info = code.materialize(project=project, repo_url=f"s3accjobstore://{digest}.zip", dest=tmp_path / "code")
    assert info == {"kind": "zip", "sha1": digest}
    assert (tmp_path / "code/pkg/mod.py").read_bytes() == b"x = 1\n"
    assert mode_of(tmp_path / "code/main.py") == 0o600


@pytest.mark.parametrize("member", ["../evil.txt", "a/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt"])
def test_zip_with_an_unsafe_member_is_refused(project, tmp_path, member):
    digest = put_zip(project, {member: b"x"})
    with pytest.raises(InvalidInput):
        code.materialize(project=project, repo_url=f"s3accjobstore://{digest}.zip", dest=tmp_path / "a" / "code")
    assert not (tmp_path / "a" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


# --- git ----------------------------------------------------------------------------------------------------------


def git(cwd, *args) -> str:
    cmd = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args]
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    """A local repository with two commits on main and a tag v1 on the first."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "main.py").write_text("print('v1')\n")
    (path / "run.sh").write_text("#!/bin/sh\n")
    (path / "run.sh").chmod(0o755)
    git(path, "add", ".")
    git(path, "commit", "-qm", "v1")
    git(path, "tag", "v1")
    (path / "main.py").write_text("print('v2')\n")
    git(path, "commit", "-qam", "v2")
    return path


def test_git_clone_of_a_branch_records_the_full_commit(project, repo, tmp_path, settings):
    settings.ACC_GIT_ALLOW_FILE = True
    dest = tmp_path / "code"
    info = code.materialize(project=project, repo_url=f"file://{repo}", repo_branch="main", dest=dest)
    assert info == {"kind": "git", "url": f"file://{repo}", "commit": git(repo, "rev-parse", "HEAD")}
    assert (dest / "main.py").read_text() == "print('v2')\n"
    assert mode_of(dest / "run.sh") & 0o100
    assert not (dest / ".git").exists()


@pytest.mark.parametrize("ref", ["v1", "full-sha", "short-sha"])
def test_git_checks_out_tags_and_commits(project, repo, tmp_path, settings, ref):
    settings.ACC_GIT_ALLOW_FILE = True
    first = git(repo, "rev-parse", "v1")
    ref = {"full-sha": first, "short-sha": first[:10]}.get(ref, ref)
    info = code.materialize(project=project, repo_url=f"file://{repo}", repo_branch=ref, dest=tmp_path / "c")
    assert info["commit"] == first
    assert (tmp_path / "c/main.py").read_text() == "print('v1')\n"


def test_git_unknown_ref_fails_clearly(project, repo, tmp_path, settings):
    settings.ACC_GIT_ALLOW_FILE = True
    with pytest.raises(InvalidInput) as err:
        code.materialize(project=project, repo_url=f"file://{repo}", repo_branch="nope", dest=tmp_path / "c")
    assert "nope" in err.value.detail


def test_git_file_url_is_refused_unless_allowed(project, repo, tmp_path):
    with pytest.raises(InvalidInput) as err:
        code.materialize(project=project, repo_url=f"file://{repo}", repo_branch="main", dest=tmp_path / "c")
    assert "file://" in err.value.detail


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/acc-pwned",
        "fd::17",
        "--upload-pack=touch /tmp/acc-pwned",
        "/srv/repo",
        "ftp://example.org/repo.git",
        "https://example.org/repo with space",
        "ssh://-oProxyCommand=touch% /tmp/acc-pwned/r",
        "git@-oProxyCommand=x:r",
    ],
)
def test_git_refuses_remote_helpers_options_and_plain_paths(project, tmp_path, settings, url):
    settings.ACC_GIT_ALLOW_FILE = True
    with pytest.raises(InvalidInput):
        code.materialize(project=project, repo_url=url, repo_branch="main", dest=tmp_path / "c")
    assert not os.path.exists("/tmp/acc-pwned")


@pytest.mark.parametrize("ref", ["", "-b", "a..b", "main branch", "x\x00"])
def test_git_refuses_bad_refs(project, ref):
    with pytest.raises(InvalidInput):
        code.validate_code_source(project=project, repo_url="https://example.org/r.git", repo_branch=ref)


def test_git_errors_do_not_show_credentials():
    assert code.redact("https://user:s3cret@example.org/r.git") == "https://***@example.org/r.git"


# --- validate_code_source (dispatch time) ----------------------------------------------------------------------


def test_validate_accepts_uploaded_manifest_and_zip(project):
    digest = put_folder(project, {"a.py": (b"a", 0o100644)})
    code.validate_code_source(project=project, repo_url=f"s3accjobstore://manifest_{digest}.json", repo_branch=digest)
    zipped = put_zip(project, {"a.py": b"a"})
    code.validate_code_source(project=project, repo_url=f"s3accjobstore://{zipped}.zip", repo_branch="")


def test_validate_asks_to_upload_a_missing_manifest_first(project):
    with pytest.raises(InvalidInput) as err:
        code.validate_code_source(project=project, repo_url=f"s3accjobstore://manifest_{'b' * 40}.json")
    assert "upload it first" in err.value.detail


def test_validate_refuses_a_blob_and_unknown_schemes(project):
    with pytest.raises(InvalidInput):
        code.validate_code_source(project=project, repo_url=f"s3accjobstore://cas_{'b' * 40}.blob")
    with pytest.raises(InvalidInput):
        code.validate_code_source(project=project, repo_url="s3://bucket/code.zip", repo_branch="main")


def test_validate_accepts_remote_git_urls(project):
    urls = ("https://my-git.example.org/o/r.git", "ssh://git@host/r.git", "git@github.com:o/r.git", "git://h/r")
    for url in urls:
        code.validate_code_source(project=project, repo_url=url, repo_branch="main")
