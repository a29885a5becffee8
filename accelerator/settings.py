"""The one settings module. Every value has an embedded default; see README."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from accelerator.env import env_bool, env_float, env_int, env_list, env_secret, env_str, persisted_secret

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("ACC_DATA_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("DEBUG", False)
# Without SECRET_KEY (or SECRET_KEY_FILE) a random key is made on first start and kept in ACC_DATA_DIR/secret_key
# (mode 0600): there is no well-known default key that would let anyone forge upload tokens or sessions.
SECRET_KEY = env_secret("SECRET_KEY", "") or persisted_secret(DATA_DIR / "secret_key")
# Key for secrets at rest (Fernet, urlsafe base64 of 32 bytes). Derived from SECRET_KEY when unset.
ACC_SECRETS_KEY = env_secret("ACC_SECRETS_KEY", "")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Public base URL of the web app, used in links the platform writes (logs, emails).
ACC_PUBLIC_URL = env_str("ACC_PUBLIC_URL", "")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "guardian",
    "channels",
    "accounts",
    # the rooms, lowest first (README, "Code map"): each imports only those before it
    "routines",
    "files",
    "jobs",
    "builds",
    "jobflows",
    "workers",
    "interactive",
    "web",
    "hosting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "accelerator.urls"
WSGI_APPLICATION = "accelerator.wsgi.application"
ASGI_APPLICATION = "accelerator.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}"), conn_max_age=env_int("DB_CONN_MAX_AGE", 60)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DB_POOL", True):
    # Under ASGI every request runs on a fresh thread, so per-thread persistent
    # connections are never reused; a pool shares them across threads.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env_int("DB_POOL_MIN", 2),
        # per process: the web's requests wait for one of these; a Celery worker raises its own to fit its
        # threads (accelerator/celery.py), so the platform's total stays small whatever runs
        "max_size": env_int("DB_POOL_MAX", 8),
        "timeout": env_float("DB_POOL_TIMEOUT", 30.0),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL plus immediate transactions let the web process and the workers write side by side.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- the demo (make run) ------------------------------------------------------
# The embedded SQLite database means a laptop: the demo user, project and routines are loaded by `make run`.
# Any other database means a deployment: no demo unless ACC_DEMO=true. The demo user is an administrator
# only on a laptop that nobody else can reach (embedded data and a loopback-only listening address, HOST).
EMBEDDED_DATABASE = "DATABASE_URL" not in os.environ
ACC_DEMO = env_bool("ACC_DEMO", EMBEDDED_DATABASE)
ACC_DEMO_ADMIN = EMBEDDED_DATABASE and env_str("HOST", "127.0.0.1") in {"127.0.0.1", "localhost", "::1", "[::1]"}

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Front-end packages from package.json land in node_modules (make install); only their built files are served.
JSON_EDITOR_DIST = BASE_DIR / "node_modules" / "@json-editor" / "json-editor" / "dist"
if JSON_EDITOR_DIST.is_dir():
    STATICFILES_DIRS.append(("vendor/json-editor", JSON_EDITOR_DIST))
# CodeMirror 5 ships no dist folder: its core, the JavaScript/JSON mode and the addons are served (the schema editor).
CODEMIRROR_DIR = BASE_DIR / "node_modules" / "codemirror"
if CODEMIRROR_DIR.is_dir():
    STATICFILES_DIRS += [(f"vendor/codemirror/{part}", CODEMIRROR_DIR / part) for part in ("lib", "mode", "addon")]
# The jobflow builder's graph editor: cytoscape, its edgehandles (draw links) and dagre (layout) extensions.
for _package, _folder in (("cytoscape", "dist"), ("cytoscape-edgehandles", ""), ("cytoscape-dagre", "dist")):
    if (BASE_DIR / "node_modules" / _package / _folder).is_dir():
        STATICFILES_DIRS.append((f"vendor/{_package}", BASE_DIR / "node_modules" / _package / _folder))

# --- storage: project files and the jobstore --------------------------------
ACC_STORAGE = env_str("ACC_STORAGE", "filesystem")  # filesystem | s3
MEDIA_ROOT = DATA_DIR / "storage"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": MEDIA_ROOT}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if ACC_STORAGE == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME", "accelerator"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", "") or None,
            "access_key": env_secret("AWS_ACCESS_KEY_ID", ""),
            "secret_key": env_secret("AWS_SECRET_ACCESS_KEY", ""),
            "region_name": env_str("AWS_S3_REGION_NAME", "") or None,
            "file_overwrite": True,
            "default_acl": None,
        },
    }
# Largest single upload through the REST API and the jobstore, in bytes.
ACC_MAX_UPLOAD_BYTES = env_int("ACC_MAX_UPLOAD_BYTES", 5 * 1024**3)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Redis, Celery, Channels ----------------------------------------------
# Empty REDIS_URL means: `make run` starts an embedded Redis and sets it.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep database connections across tasks (Celery's Django fixup closes them after each task otherwise).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ROUTES = {
    "workers.tasks.run_job_task": {"queue": "jobs"},
    "workers.tasks.finish_job_task": {"queue": "jobs"},
}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BEAT_SCHEDULE = {
    "reconcile-jobs": {"task": "workers.tasks.reconcile_task", "schedule": env_float("ACC_RECONCILE_EVERY", 30.0)},
}
# Blocking reads wait on the server's side (kombu's BRPOP 1 s, channels_redis' BZPOPMIN 5 s), so the client's read
# timeout must be longer than those: redis-py 8 defaults it to 5 s, which drops an idle live socket after 5 s.
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 30.0)
REDIS_CONNECT_TIMEOUT = env_float("REDIS_CONNECT_TIMEOUT", 5.0)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_timeout": REDIS_SOCKET_TIMEOUT,
                    "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
                }
            ]
        },
    }
}

# --- execution --------------------------------------------------------------
ACC_BACKEND = env_str("ACC_BACKEND", "local")  # local | docker
# Name of this deployment; its containers are labelled with it (several may share one engine).
ACC_INSTANCE = env_str("ACC_INSTANCE", "default")
ACC_BACKENDS = {
    "local": "backends.local.LocalBackend",
    "docker": "backends.docker.DockerBackend",
    "kubernetes": "backends.kubernetes.KubernetesBackend",
}
# The kubernetes backend: pods in this namespace of the cluster that this kubeconfig reaches (empty: the
# in-cluster service account); images built on the workers' Docker engine are pushed to ACC_K8S_REGISTRY and
# pulled from there by digest; the helper image (sh and tar) passes files in and out of a pod.
ACC_K8S_NAMESPACE = env_str("ACC_K8S_NAMESPACE", "acc-jobs")
ACC_K8S_KUBECONFIG = env_str("ACC_K8S_KUBECONFIG", os.environ.get("KUBECONFIG", ""))
ACC_K8S_REGISTRY = env_str("ACC_K8S_REGISTRY", "")
ACC_K8S_HELPER_IMAGE = env_str("ACC_K8S_HELPER_IMAGE", "busybox:1.36")
ACC_K8S_START_TIMEOUT = env_int("ACC_K8S_START_TIMEOUT", 300)  # s for a pod to be scheduled and started
# A pod requests this fraction of its routine's cores and RAM (its limits stay whole): below 1 the scheduler packs
# more jobs on a node than their limits add up to (a small test cluster; an operator's deliberate overcommit).
ACC_K8S_REQUEST_FRACTION = env_float("ACC_K8S_REQUEST_FRACTION", 1.0)
# Workflow volumes: claims of this storage class; empty = hostPath volumes under ACC_K8S_PIPE_HOST_DIR on the
# node (a single-node cluster: tests, a laptop).
ACC_K8S_PIPE_STORAGE_CLASS = env_str("ACC_K8S_PIPE_STORAGE_CLASS", "")
ACC_K8S_PIPE_HOST_DIR = env_str("ACC_K8S_PIPE_HOST_DIR", "/var/lib/accelerator/pipes")
ACC_JOBS_DIR = Path(env_str("ACC_JOBS_DIR", str(DATA_DIR / "jobs"))).resolve()
ACC_DOCKER_NETWORK = env_str("ACC_DOCKER_NETWORK", "none")
ACC_DOCKER_PIDS_LIMIT = env_int("ACC_DOCKER_PIDS_LIMIT", 1024)
# How long resolve_image may try to pull a missing image (s); 0 = never pull.
ACC_DOCKER_PULL_TIMEOUT = env_int("ACC_DOCKER_PULL_TIMEOUT", 600)
# The local backend runs each job in a bubblewrap sandbox (its own folders only, no network, its memory limit).
# Without a usable sandbox it refuses jobs, unless the operator accepts running them on the host as the worker.
ACC_LOCAL_BWRAP = env_str("ACC_LOCAL_BWRAP", "bwrap")  # the bubblewrap program (a name on PATH or a path)
ACC_LOCAL_UNSANDBOXED_UNSAFE = env_bool("ACC_LOCAL_UNSANDBOXED_UNSAFE", False)
ACC_LOCAL_SANDBOX_UID = env_int("ACC_LOCAL_SANDBOX_UID", 65534)  # whom jobs run as when the worker is root
ACC_LOCAL_SANDBOX_GID = env_int("ACC_LOCAL_SANDBOX_GID", 65534)
ACC_LOCAL_NETWORK = env_str("ACC_LOCAL_NETWORK", "none")  # none | host (sessions always get a network of their own)
ACC_DEFAULT_WORKDIR = env_str("ACC_DEFAULT_WORKDIR", "/code")
ACC_DEFAULT_TIMEOUT = env_int("ACC_DEFAULT_TIMEOUT", 3600)
ACC_MAX_TIMEOUT = env_int("ACC_MAX_TIMEOUT", 7 * 24 * 3600)
# The most a task may ask for, checked when a routine is saved or dispatched (timeout and build_timeout: above).
ACC_MAX_CORES = env_float("ACC_MAX_CORES", 256.0)
ACC_MAX_RAM = env_int("ACC_MAX_RAM", 2**40)  # bytes (1 TiB)
ACC_MAX_STORAGE = env_int("ACC_MAX_STORAGE", 16 * 2**40)  # bytes (16 TiB), each of local and workflow storage
ACC_MAX_RETRIES = env_int("ACC_MAX_RETRIES", 10)  # retries of a jobflow node
ACC_MAX_RETRY_BACKOFF = env_float("ACC_MAX_RETRY_BACKOFF", 24 * 3600.0)  # seconds before a node's first retry
ACC_DEFAULT_BUILD_TIMEOUT = env_int("ACC_DEFAULT_BUILD_TIMEOUT", 1800)
# Git code sources: file:// URLs read the worker's own disk, so they are off unless an operator allows them.
ACC_GIT_ALLOW_FILE = env_bool("ACC_GIT_ALLOW_FILE", False)
# A git remote must resolve to public addresses only: loopback, private, link-local, unique-local, multicast and
# reserved ones are refused (at save, at dispatch and in the worker right before it connects) unless listed here:
# comma-separated CIDRs ("10.0.0.0/8,127.0.0.1") and host names ("git.internal", ".internal" for every name below).
ACC_GIT_ALLOWED_NETWORKS = env_list("ACC_GIT_ALLOWED_NETWORKS", [])
ACC_GIT_RESOLVE_TIMEOUT = env_float("ACC_GIT_RESOLVE_TIMEOUT", 3.0)  # DNS lookup of a git host (s)
# Total time of one git checkout in a worker (s); a job's own timeout bounds it too. Its processes are then killed.
ACC_GIT_TIMEOUT = env_int("ACC_GIT_TIMEOUT", 600)
# At dispatch the cache asks the remote which commit a branch names; past this (s) the job just runs, and
# that remote is not asked again at dispatch for ACC_GIT_SLOW_REMOTE_TTL seconds.
ACC_GIT_LS_REMOTE_TIMEOUT = env_float("ACC_GIT_LS_REMOTE_TIMEOUT", 3.0)
ACC_GIT_SLOW_REMOTE_TTL = env_int("ACC_GIT_SLOW_REMOTE_TTL", 300)
# What each jobflow node left in /mnt/pipe, kept so that a reused node restores it for its children.
ACC_SNAPSHOTS_DIR = Path(env_str("ACC_SNAPSHOTS_DIR", str(DATA_DIR / "snapshots"))).resolve()
ACC_STOP_GRACE = env_int("ACC_STOP_GRACE", 3)
ACC_USAGE_EVERY = env_float("ACC_USAGE_EVERY", 1.0)  # seconds between CPU / memory readings of a job
# The supervisor reads at most this many jobs' usage a second: with many jobs running, each is read less often
# (every jobs / ACC_USAGE_READS_PER_SECOND s) instead of the engine spending its time on readings.
ACC_USAGE_READS_PER_SECOND = env_float("ACC_USAGE_READS_PER_SECOND", 25.0)
# A running job's worker refreshes its heartbeat this often (s); the reconciler
# settles jobs whose heartbeat is older than ACC_HEARTBEAT_TIMEOUT.
ACC_HEARTBEAT_EVERY = env_float("ACC_HEARTBEAT_EVERY", 5.0)
ACC_HEARTBEAT_TIMEOUT = env_float("ACC_HEARTBEAT_TIMEOUT", 60.0)
# How often the supervisor looks for cancel and session stop/extend requests of running jobs (the web only records
# them).
ACC_CANCEL_CHECK_EVERY = env_float("ACC_CANCEL_CHECK_EVERY", 1.0)
# A job admitted this long ago (s) and still QUEUED has its start message sent again: a worker killed with the
# message in hand leaves it unacknowledged on the broker; a duplicate is harmless (the runner's compare-and-set).
ACC_QUEUE_RESEND_AFTER = env_float("ACC_QUEUE_RESEND_AFTER", 60.0)
# The supervisor (manage.py supervise) looks for RUNNING jobs it does not follow yet this often (s): after its own
# restart it adopts them all at once; this only matters when an announcement on Redis was lost.
ACC_SUPERVISOR_RESYNC = env_float("ACC_SUPERVISOR_RESYNC", 10.0)
# The fair queue (jobs.scheduler): how many admitted jobs may wait for a worker to pick them up at once. Jobs beyond
# it stay in our queue, where projects (then users) take turns, instead of in Celery's first-come-first-served one.
ACC_START_WINDOW = env_int("ACC_START_WINDOW", 8)
# A failed jobflow keeps its workflow volume this long (s), so a retry finds the files its parents left.
ACC_PIPE_RETENTION = env_int("ACC_PIPE_RETENTION", 24 * 3600)
ACC_LOG_FLUSH_SECONDS = env_float("ACC_LOG_FLUSH_SECONDS", 0.1)
ACC_LOG_MAX_BYTES = env_int("ACC_LOG_MAX_BYTES", 20 * 1024 * 1024)

# --- interactive sessions (a routine whose conf has interactive_socket) ---------
# Base of the session URLs written to job logs; pages link relatively (/interactive/<id>/).
# The platform's own address, for links from pages served elsewhere (the session proxy's own origin).
ACC_PLATFORM_URL = (ACC_PUBLIC_URL or f"http://127.0.0.1:{env_int('PORT', 8000)}").rstrip("/")
ACC_INTERACTIVE_BASE_URL = (env_str("ACC_INTERACTIVE_BASE_URL", "") or ACC_PLATFORM_URL).rstrip("/")
# A host of its own per session, e.g. "{id}.sessions.example.org" (wildcard DNS and certificate): the pages a
# session serves then run on another origin than the platform's. Empty: sessions live under /interactive/.
# Without a port the platform's request port is used ("{id}.localhost" works for a local run).
ACC_INTERACTIVE_HOST = env_str("ACC_INTERACTIVE_HOST", "")
# Live (not yet ended) sessions one user may have at once; 0 = no limit.
ACC_INTERACTIVE_MAX_PER_USER = env_int("ACC_INTERACTIVE_MAX_PER_USER", 3)
# How much the owner may extend a session beyond its timeout, in total (s); 0 = no extensions.
ACC_INTERACTIVE_MAX_EXTEND = env_int("ACC_INTERACTIVE_MAX_EXTEND", 4 * 3600)
# What the job page's "Extend" button adds (s).
ACC_INTERACTIVE_EXTEND_STEP = env_int("ACC_INTERACTIVE_EXTEND_STEP", 1800)
# docker backend: "" gives each TCP session an internal network of its own; a name puts all on that network.
ACC_INTERACTIVE_NETWORK = env_str("ACC_INTERACTIVE_NETWORK", "")
# Host folders shared with jobs whose interactive socket is a Unix socket (engine host = web host).
ACC_INTERACTIVE_SOCKET_DIR = Path(env_str("ACC_INTERACTIVE_SOCKET_DIR", str(DATA_DIR / "sockets"))).resolve()

# --- tokens -----------------------------------------------------------------
ACC_AUTH_CODE_TTL = env_int("ACC_AUTH_CODE_TTL", 300)
ACC_ACCESS_TOKEN_TTL = env_int("ACC_ACCESS_TOKEN_TTL", 3600)
ACC_REFRESH_TOKEN_TTL = env_int("ACC_REFRESH_TOKEN_TTL", 30 * 24 * 3600)
ACC_UPLOAD_URL_TTL = env_int("ACC_UPLOAD_URL_TTL", 3600)

# --- REST -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.AccessTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "accelerator.schema.AutoSchema",
    # JSON only, parsed with bounds (depth, 64-bit integers, no NUL, DATA_UPLOAD_MAX_MEMORY_SIZE): bad bodies are 4xx
    "DEFAULT_PARSER_CLASSES": ["accelerator.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "accelerator.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# A NUL in the path or query string is a 400 before any view (PostgreSQL cannot hold it in text).
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.common.CommonMiddleware"), "accelerator.request_guards.RefuseNulMiddleware"
)
SPECTACULAR_SETTINGS = {
    "TITLE": "Accelerator API",
    "DESCRIPTION": "Projects, routines, jobs and files of the Accelerator platform.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # every error is {"detail", "code"} (accelerator.api_errors); accelerator.schema documents it per operation
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "jobs.states.Status",
        "VersionStatusEnum": "hosting.models.VersionStatus",
    },
}

# --- browser security: Content-Security-Policy, security headers, HTTPS, API docs (issue 12) -------------
# Every response gets a Content-Security-Policy (django-csp): scripts only from our own static files (no inline
# script, no eval), so text a user wrote can never run as script even where a page forgot to escape it.
# Styles allow 'unsafe-inline': json-editor sets style attributes on the elements it builds (style cannot run
# script). frame-ancestors 'none' replaces X-Frame-Options DENY; the hosted widget widens it to the model's
# embed origins (hosting.pages). Pages a session's own server sends through interactive/proxy.py get none of this.
from csp.constants import NONE, SELF, UNSAFE_INLINE  # noqa: E402

INSTALLED_APPS += ["csp", "drf_spectacular_sidecar"]
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware")
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],  # Swagger UI's icons are data: URLs
        "font-src": [SELF],
        "connect-src": [SELF],  # fetch/XHR to this origin and the /ws/live/ socket (CSP 3: 'self' covers ws:/wss:)
        "frame-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = env_str("ACC_REFERRER_POLICY", "same-origin")
# ACC_HTTPS=true: the platform is reached over https:// (directly or through a TLS proxy). Cookies are then sent
# over TLS only and browsers are told to use https:// for ACC_HSTS_SECONDS. Off by default: a laptop serves
# plain http on 127.0.0.1, where Secure cookies would never come back.
ACC_HTTPS = env_bool("ACC_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = ACC_HTTPS
SECURE_HSTS_SECONDS = env_int("ACC_HSTS_SECONDS", 365 * 24 * 3600) if ACC_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ACC_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("ACC_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("ACC_SSL_REDIRECT", False)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients): trust it, so
# Django knows a request came over https (HSTS, secure redirects). Never set this without such a proxy.
if env_bool("ACC_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Swagger UI and ReDoc from our own static files (drf-spectacular-sidecar): /api/docs/ works offline.
SPECTACULAR_SETTINGS.update(
    {"SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR", "REDOC_DIST": "SIDECAR"}
)

# --- sign-in lockout and token throttling (issue 12) ----------------------------------------------------------
# Counters live in Redis (Django's cache), shared by every web process of this instance (keys prefixed with
# ACC_INSTANCE), so a guesser cannot spread attempts over processes.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"acc:{ACC_INSTANCE}",
        "OPTIONS": {"socket_timeout": REDIS_SOCKET_TIMEOUT, "socket_connect_timeout": REDIS_CONNECT_TIMEOUT},
    }
}
# Password sign-in (/accounts/login/, /admin/login/) through django-axes: after ACC_LOGIN_FAILURE_LIMIT failed
# attempts for one username (from anywhere) or from one address (for any username), sign-in is refused with 429
# and a page saying so for ACC_LOGIN_COOLOFF_MINUTES, even with the right password; each further failed attempt
# restarts that wait.
ACC_LOGIN_FAILURE_LIMIT = env_int("ACC_LOGIN_FAILURE_LIMIT", 5)
ACC_LOGIN_COOLOFF_MINUTES = env_float("ACC_LOGIN_COOLOFF_MINUTES", 15.0)
# Behind N reverse proxies that append to X-Forwarded-For, the client's address is read from that header.
ACC_TRUSTED_PROXY_COUNT = env_int("ACC_TRUSTED_PROXY_COUNT", 0)
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
AUTHENTICATION_BACKENDS.insert(0, "axes.backends.AxesStandaloneBackend")
AXES_HANDLER = "axes.handlers.cache.AxesCacheHandler"
AXES_FAILURE_LIMIT = ACC_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=ACC_LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_ENABLE_ADMIN = False  # the cache handler keeps no attempt rows to show
if ACC_TRUSTED_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = ACC_TRUSTED_PROXY_COUNT
    AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    REST_FRAMEWORK["NUM_PROXIES"] = ACC_TRUSTED_PROXY_COUNT
# accli's token endpoints, per client address (DRF throttles, "<n>/<s|min|hour|day>"): exchanging a pasted code
# for a login, and refreshing the access token (accli does that once per command). Past the rate: 429 with
# {"detail"} and Retry-After saying when to try again.
ACC_TOKEN_EXCHANGE_RATE = env_str("ACC_TOKEN_EXCHANGE_RATE", "10/min")
ACC_TOKEN_REFRESH_RATE = env_str("ACC_TOKEN_REFRESH_RATE", "60/min")
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "token-exchange": ACC_TOKEN_EXCHANGE_RATE,
    "token-refresh": ACC_TOKEN_REFRESH_RATE,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
