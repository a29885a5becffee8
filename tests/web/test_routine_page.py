"""The routine page: its Markdown description, and what it says about reuse."""

import pytest

from routines import services
from tests.web.conftest import make_routine

pytestmark = pytest.mark.django_db


def description_of(text: str) -> str:
    return text.split('id="description"')[1].split("</div>")[0]


def test_the_description_is_markdown_and_raw_html_or_script_links_stay_inert(signed_in, project, alice):
    routine = make_routine(project, alice, name="md")
    routine.description = (
        "Counts `lines` in *every* file.\n\n<script>alert('x')</script>\n<img src=x onerror=\"alert('y')\">\n\n"
        "[docs](javascript:alert('z')) and [home](https://example.org/)\n"
    )
    routine.save(update_fields=["description"])
    text = signed_in(alice).get(f"/routines/{routine.pk}/").content.decode()
    shown = description_of(text)
    assert "<code>lines</code>" in shown and "<em>every</em>" in shown, "Markdown is rendered, not shown raw"
    assert '<a href="https://example.org/" rel="noopener noreferrer">home</a>' in shown
    assert "<script>alert" not in text and "<img" not in shown and "javascript:" not in shown
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in shown, "raw HTML is shown as the text it is"


def test_a_plain_routine_says_identical_runs_come_from_the_cache(signed_in, project, alice):
    routine = make_routine(project, alice, name="plain", schema=None)
    text = signed_in(alice).get(f"/routines/{routine.pk}/").content.decode()
    assert "identical runs are answered from the cache" in text and 'name="force_build"' in text


def test_an_interactive_routine_says_each_run_is_a_session_of_its_own(signed_in, project, alice):
    routine = make_routine(project, alice, name="lab", schema=None, conf={"interactive_socket": "0.0.0.0:8787"})
    text = signed_in(alice).get(f"/routines/{routine.pk}/").content.decode()
    reuse = text.split('id="reuse">')[1].split("</dd>")[0]
    assert "answered from the cache" not in reuse.replace("neither answered from the cache", "")
    assert reuse.startswith("never") and "session of its own" in reuse
    assert 'name="force_build"' not in text, "no 'ignore the cache' choice where the cache never answers"


def test_a_non_deterministic_routine_says_it_is_never_reused(signed_in, project, alice):
    task = {
        "name": "random",
        "deterministic": False,
        "job_kwargs": {"docker_image": "acc-test/busybox:latest", "command": "echo $RANDOM", "conf": {}},
    }
    routine = services.save_routine(project=project, user=alice, task=task, description="")
    text = signed_in(alice).get(f"/routines/{routine.pk}/").content.decode()
    assert "never (not deterministic)" in text and "identical runs are answered" not in text
    assert 'name="force_build"' not in text
