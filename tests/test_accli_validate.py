"""The real `accli==2.0.14 validate` against a live server and the demo's dataset template.

accli reads the template without credentials from
/api/v1/projects/<project>/dataset-templates/<template>/by-slug/ and checks the file on the user's machine.
"""

import re
import subprocess
from pathlib import Path

import pytest

from hosting.management.commands.load_demo import DATASET_SAMPLE, DATASET_TEMPLATE
from routines import dataset_templates
from routines.models import Project
from tests.conftest import ACCLI

pytestmark = pytest.mark.django_db(transaction=True)
SLUG = DATASET_TEMPLATE["slug"]
HEADER = "Model,Scenario,Region,Variable,Unit,Year,Value\n"


@pytest.fixture
def demo_template(project, alice):
    """The template `make run`'s demo loads, in project demo."""
    return dataset_templates.create_template(project=project, actor=alice, public=True, **DATASET_TEMPLATE)


def validate(tmp_path: Path, server: str, csv_text: str | bytes, *, template: str = SLUG) -> str:
    csv = tmp_path / "data.csv"
    csv.write_bytes(csv_text if isinstance(csv_text, bytes) else csv_text.encode())
    result = subprocess.run(
        [ACCLI, "validate", "demo", template, str(csv), "-s", server],
        capture_output=True,
        text=True,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    return result.stdout + result.stderr


def flat(text: str) -> str:
    """The output with rich's line wrapping and traceback frames taken out, for matching sentences."""
    return re.sub(r"[\s│]+", " ", text)


def test_a_file_that_follows_the_demo_template_is_validated(live_server, demo_template, tmp_path):
    out = validate(tmp_path, live_server.url, DATASET_SAMPLE)
    assert "Data validated against selected template." in out, out
    assert "Invalid data" not in out


def test_make_runs_demo_validates_its_own_sample_file_out_of_the_box(live_server, tmp_path):
    from django.core.files.storage import default_storage
    from django.core.management import call_command

    call_command("load_demo", verbosity=0)
    call_command("load_demo", verbosity=0)  # safe to run again
    project = Project.objects.get(slug="demo")
    sample = default_storage.open(f"projects/{project.pk}/data/regional-timeseries.csv").read()
    out = validate(tmp_path, live_server.url, sample)
    assert "Data validated against selected template." in out, out


def test_mixed_case_values_pass_because_accli_lower_cases_the_file(live_server, demo_template, tmp_path):
    out = validate(
        tmp_path, live_server.url, HEADER + "IMAGE 3.3,ssp5-85,UNITED STATES,GDP|PPP,Billion US$2010/yr,2100,1e5\n"
    )
    assert "Data validated against selected template." in out, out


def test_a_region_outside_the_map_is_reported(live_server, demo_template, tmp_path):
    out = validate(tmp_path, live_server.url, HEADER + "IMAGE 3.3,SSP2-45,Atlantis,Population,million,2030,12\n")
    assert "Data is not valid against selected template." in out, out
    assert "Invalid data" in out
    assert "'atlantis' must be one of" in flat(out)


def test_a_year_that_is_not_a_number_is_reported(live_server, demo_template, tmp_path):
    out = validate(tmp_path, live_server.url, HEADER + "IMAGE 3.3,SSP2-45,World,Population,million,soon,12\n")
    assert "Data is not valid against selected template." in out, out
    assert "Invalid data" in out and "could not convert string to float: 'soon'" in flat(out)


def test_accli_2_0_14_does_not_apply_the_root_schema_so_a_value_that_is_not_a_number_passes(
    live_server, demo_template, tmp_path
):
    """accli calls jsonschema.validate(rules["root"], row): the rules become the data and the row the schema,
    so the columns' types and patterns are never applied (the template page says so). When this fails, accli
    checks them: the page's note and this test go."""
    out = validate(tmp_path, live_server.url, HEADER + "IMAGE 3.3,SSP2-45,World,Population,million,2030,many\n")
    assert "Data validated against selected template." in out, out


def test_a_unit_that_is_not_the_variables_unit_is_reported(live_server, demo_template, tmp_path):
    out = validate(tmp_path, live_server.url, HEADER + "IMAGE 3.3,SSP2-45,World,Population,EJ/yr,2030,12\n")
    assert "Data is not valid against selected template." in out, out
    assert "must be equal to million" in flat(out)


def test_only_the_bad_rows_are_reported(live_server, demo_template, tmp_path):
    good = DATASET_SAMPLE.decode().splitlines()[1]
    out = validate(tmp_path, live_server.url, f"{HEADER}{good}\n{good.replace('World', 'Mordor')}\n")
    assert "Data is not valid against selected template." in out, out
    assert out.count("Invalid data") == 1 and "mordor" in out


def test_a_private_template_gives_accli_our_reason_and_what_to_do(live_server, demo_template, tmp_path):
    dataset_templates.update_template(template=demo_template, actor=demo_template.created_by, public=False)
    out = flat(validate(tmp_path, live_server.url, DATASET_SAMPLE))
    assert "status_code=403" in out, out
    assert f"No public dataset template {SLUG} in project demo." in out
    assert "accli validate reads templates without signing in" in out
    assert "Data validated" not in out


def test_a_missing_template_answers_exactly_like_a_private_one(live_server, demo_template, tmp_path):
    out = flat(validate(tmp_path, live_server.url, DATASET_SAMPLE, template="no-such-template"))
    assert "status_code=403" in out, out
    assert "No public dataset template no-such-template in project demo." in out, out
