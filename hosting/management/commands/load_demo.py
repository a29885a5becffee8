"""Idempotent demo data: user `demo`, project `demo`, base stacks and runnable routines."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from routines import services
from routines.models import BaseStack, Membership, Project, Role, Routine

DEMO_PASSWORD = "demo-password"

STACKS = [
    {
        "name": "PYTHON3_7",
        "image": "python:3.7-slim",
        "workdir": "/code",
        "install_command": "if [ -f requirements.txt ]; then pip install --no-cache-dir -r requirements.txt; fi",
        "description": "Python 3.7; installs requirements.txt from the job folder.",
    },
    {
        "name": "PYTHON3_11",
        "image": "python:3.11-slim",
        "workdir": "/code",
        "install_command": "if [ -f requirements.txt ]; then pip install --no-cache-dir -r requirements.txt; fi",
        "description": "Python 3.11; installs requirements.txt from the job folder.",
    },
]

ROUTINES = [
    {
        "name": "hello",
        "description": "Prints a greeting a few times and writes it to out/hello.txt in the project files.",
        "job_kwargs": {
            "docker_image": "acc-test/busybox:latest",
            "command": 'mkdir -p out; for i in 1 2 3; do echo "hello $WHO ($i)"; sleep 1; done; '
            'echo "hello $WHO" > out/hello.txt',
            "conf": {"WHO": "world", "output_mappings": "/code/out/:acc://demo/results/hello/"},
        },
        "timeout": 600,
    },
    {
        "name": "square",
        "description": "Prints n squared. Published as the hosted model `demo-hosted`.",
        "job_kwargs": {
            "docker_image": "acc-test/busybox:latest",
            "command": 'mkdir -p out; echo "$n squared is $((n*n))" | tee out/square.txt',
            "conf": {},
        },
        "conf_schema": {
            "type": "object",
            "properties": {"n": {"type": "integer", "title": "n", "description": "The number to square."}},
            "required": ["n"],
        },
        "timeout": 600,
    },
    {
        "name": "count-lines",
        "description": "Counts the lines of the files in data/ of the project.",
        "job_kwargs": {
            "docker_image": "acc-test/busybox:latest",
            "command": "mkdir -p out; wc -l input/* | tee out/counts.txt",
            "conf": {
                "input_mappings": "acc://demo/data/:/code/input/",
                "output_mappings": "/code/out/:acc://demo/results/counts/",
            },
        },
        "timeout": 600,
    },
    # Interactive routines: a server behind an authenticated URL until the timeout (README, "Interactive
    # sessions"). The plain web app runs on every backend; JupyterLab needs its image (docker or kubernetes): the
    # local backend runs the host's own programs, where `jupyter` is not found, so it is not offered there.
    {
        "name": "web-app",
        "description": "An interactive session: a small web server. Run it, then open the link on the job page "
        "(or the URL in the log); it stops after 15 minutes, or earlier with *Stop the session*.",
        "job_kwargs": {
            "docker_image": "acc-test/python:latest",
            "command": "mkdir -p www && printf '<!doctype html><title>Demo web app</title>"
            "<h1>Hello from job %s</h1><p>Started %s; reached through %s</p>' "
            '"$ACC_JOB_ID" "$(date -u)" "$ACC_INTERACTIVE_URL" > www/index.html && '
            "exec python3 -m http.server 8787 --bind 0.0.0.0 --directory www",
            "conf": {"interactive_socket": "0.0.0.0:8787"},
        },
        "timeout": 900,
    },
    {
        "name": "jupyterlab",
        "description": "An interactive JupyterLab for an hour (docker backend; the image "
        "quay.io/jupyter/base-notebook must be on the engine). The platform's proxy does the sign-in, so "
        "Jupyter's own token is off; `interactive_prefix: keep` hands Jupyter the full path, which it "
        "expects under `--ServerApp.base_url`.",
        "job_kwargs": {
            "docker_image": "quay.io/jupyter/base-notebook:latest",
            "command": "exec jupyter lab --ip=0.0.0.0 --port=8888 --no-browser "
            '--ServerApp.base_url="$ACC_INTERACTIVE_PREFIX" --IdentityProvider.token="" '
            "--ServerApp.allow_remote_access=True --ServerApp.trust_xheaders=True",
            "conf": {"interactive_socket": "0.0.0.0:8888", "interactive_prefix": "keep"},
        },
        "required_ram": 2 * 1024**3,
        "timeout": 3600,
        "backends": ("docker", "kubernetes"),
    },
]
# keys of ROUTINES that are the demo's own, not part of the accli task
_DEMO_KEYS = ("description", "backends")

# A public dataset template: `accli validate demo regional-timeseries file.csv -s <server>` checks a CSV file in
# the IAMC style against it. accli lower-cases the file, so every name and value here is lower-case, and reads
# every cell as text, so years and numbers are patterns. Each variable's unit is fixed (template_validators).
DATASET_TEMPLATE = {
    "slug": "regional-timeseries",
    "name": "Regional timeseries (IAMC style)",
    "description": "One value per model, scenario, region, variable and year, with the variable's unit. "
    "Columns: model, scenario, region, variable, unit, year, value.",
    "rules": {
        "root": {
            "type": "object",
            "properties": {
                "model": {"type": "string", "description": "The model that produced the value."},
                "scenario": {"type": "string"},
                "region": {"type": "string"},
                "variable": {"type": "string"},
                "unit": {"type": "string", "description": "Must be the variable's unit."},
                "year": {"type": "string", "pattern": "^(19|20|21)[0-9]{2}$"},
                "value": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?(e[-+]?[0-9]+)?$"},
            },
            "required": ["model", "scenario", "region", "variable", "unit", "year", "value"],
        },
        "root_schema_declarations": {
            "time_dimension": "year",
            "value_dimension": "value",
            "region_dimension": "region",
            "region_layer_map_key": "region_layer",
        },
        "map_model": {"message-globiom 1.1": {}, "remind-magpie 3.2": {}, "image 3.3": {}},
        "map_scenario": {"ssp1-19": {}, "ssp2-45": {}, "ssp3-70": {}, "ssp5-85": {}},
        "map_region": {
            "world": {"region_layer": "global"},
            "r5asia": {"region_layer": "r5"},
            "r5lam": {"region_layer": "r5"},
            "r5maf": {"region_layer": "r5"},
            "r5oecd90+eu": {"region_layer": "r5"},
            "r5ref": {"region_layer": "r5"},
            "austria": {"region_layer": "country"},
            "brazil": {"region_layer": "country"},
            "china": {"region_layer": "country"},
            "germany": {"region_layer": "country"},
            "india": {"region_layer": "country"},
            "kenya": {"region_layer": "country"},
            "united states": {"region_layer": "country"},
        },
        "map_variable": {
            "emissions|co2": {"unit": "mt co2/yr"},
            "emissions|ch4": {"unit": "mt ch4/yr"},
            "primary energy": {"unit": "ej/yr"},
            "final energy|electricity": {"unit": "ej/yr"},
            "population": {"unit": "million"},
            "gdp|ppp": {"unit": "billion us$2010/yr"},
        },
        "map_unit": {"mt co2/yr": {}, "mt ch4/yr": {}, "ej/yr": {}, "million": {}, "billion us$2010/yr": {}},
        "template_validators": {"unit": {"value_equals": ["&map_variable", "{variable}", "unit"]}},
    },
}
DATASET_SAMPLE = (
    b"model,scenario,region,variable,unit,year,value\n"
    b"MESSAGE-GLOBIOM 1.1,SSP2-45,World,Emissions|CO2,Mt CO2/yr,2030,35612.4\n"
    b"MESSAGE-GLOBIOM 1.1,SSP2-45,Austria,Primary Energy,EJ/yr,2030,1.32\n"
    b"REMIND-MAgPIE 3.2,SSP1-19,R5ASIA,Population,million,2050,4750\n"
)


class Command(BaseCommand):
    help = "Create the demo user, project, base stacks and routines (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-enabled",
            action="store_true",
            help="load only when ACC_DEMO is on (make run: on with the embedded database, off otherwise)",
        )

    @transaction.atomic
    def handle(self, *args, **options):
        if options["if_enabled"] and not settings.ACC_DEMO:
            self.stdout.write("demo off (ACC_DEMO=false): no demo user, no demo data")
            return
        user_model = get_user_model()
        # an administrator only on a laptop nobody else reaches (embedded data, loopback-only address)
        admin = settings.ACC_DEMO_ADMIN
        user, created = user_model.objects.get_or_create(
            username="demo", defaults={"is_staff": admin, "is_superuser": admin}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        elif (user.is_staff or user.is_superuser) and not admin:
            user.is_staff = user.is_superuser = False
            user.save(update_fields=["is_staff", "is_superuser"])
        project, _ = Project.objects.get_or_create(slug="demo", defaults={"name": "Demo project"})
        Membership.objects.get_or_create(project=project, user=user, defaults={"role": Role.OWNER})
        for stack in STACKS:
            BaseStack.objects.get_or_create(name=stack["name"], defaults=stack)
        skipped = []
        for item in ROUTINES:
            if settings.ACC_BACKEND not in item.get("backends", (settings.ACC_BACKEND,)):
                skipped.append(f"{item['name']} (needs the {' or '.join(item['backends'])} backend)")
                continue
            task = {k: v for k, v in item.items() if k not in _DEMO_KEYS}
            routine = Routine.objects.filter(project=project, name=item["name"]).first()
            if routine is None:
                services.save_routine(project=project, user=user, task=task, description=item["description"])
        self._demo_data(project)
        self._hosted(project, user)
        self._dataset_template(project, user)
        role = "an administrator" if admin else "not an administrator"
        self.stdout.write(
            f"demo data ready: user demo / {DEMO_PASSWORD} ({role}), project demo, model demo-hosted, "
            f"dataset template {DATASET_TEMPLATE['slug']} (accli validate demo {DATASET_TEMPLATE['slug']} file.csv)"
        )
        if skipped:
            self.stdout.write(f"not offered on the {settings.ACC_BACKEND} backend: {', '.join(skipped)}")

    def _hosted(self, project, user):
        from hosting import services as hosting_services
        from hosting.models import HostedModel

        if HostedModel.objects.filter(slug="demo-hosted").exists():
            return
        routine = Routine.objects.get(project=project, name="square")
        data = {
            "slug": "demo-hosted",
            "title": "Square a number",
            "description": "Give an integer **n**; the model prints *n* squared and keeps it in `square.txt` "
            "in your own area.",
            "tags": ["demo", "math"],
            "policy": "public",
            "routine": routine.pk,
            "outputs": [{"path": "/code/out/", "name": "result"}],
        }
        hosting_services.publish(user=user, project_slug=project.slug, data=data)

    def _dataset_template(self, project, user):
        from routines import dataset_templates
        from routines.models import DatasetTemplate

        if DatasetTemplate.objects.filter(project=project, slug=DATASET_TEMPLATE["slug"]).exists():
            return
        dataset_templates.create_template(project=project, actor=user, public=True, **DATASET_TEMPLATE)

    def _demo_data(self, project):
        from django.core.files.base import ContentFile
        from django.core.files.storage import default_storage

        path = f"projects/{project.pk}/data/sample.csv"
        if not default_storage.exists(path):
            default_storage.save(path, ContentFile(b"year,value\n2020,1\n2021,2\n2022,3\n"))
        path = f"projects/{project.pk}/data/regional-timeseries.csv"  # valid against the demo dataset template
        if not default_storage.exists(path):
            default_storage.save(path, ContentFile(DATASET_SAMPLE))
