import io, json
import pytest
from tests.browser.conftest import sign_in
from tests.web.conftest import make_routine, CONF_SCHEMA

def test_dom(tab, project, alice):
    r = make_routine(project, alice, conf={"WHO": "world"})
    kv = make_routine(project, alice, name="plain", schema=None, conf={"A": "1"})
    page = tab
    sign_in(page, "alice", "alice-pass-123")
    for url in (f"/routines/{r.pk}/", f"/routines/{kv.pk}/"):
        page.goto(url)
        page.wait_for_selector("#conf-editor[data-ready]")
        print(page.evaluate("document.getElementById('conf-editor').innerHTML")[:3000])
