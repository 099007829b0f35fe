import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def _setup_django(**env_overrides: str) -> subprocess.CompletedProcess:
    unset = {"SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL", "STOCKLINE_SECRET_KEYS"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings", **env_overrides}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def test_production_without_secret_key_refuses_to_start_with_one_clear_line():
    result = _setup_django(DEBUG="false")

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr.strip().splitlines()[-1]


def test_production_without_secret_keys_refuses_to_start_with_one_clear_line():
    result = _setup_django(DEBUG="false", SECRET_KEY="x" * 60, ALLOWED_HOSTS="shop.example")

    assert result.returncode != 0
    assert "STOCKLINE_SECRET_KEYS must be set when DEBUG is off." in result.stderr.strip().splitlines()[-1]


def test_production_with_secret_key_and_secret_keys_starts():
    result = _setup_django(
        DEBUG="false", SECRET_KEY="x" * 60, ALLOWED_HOSTS="shop.example",
        STOCKLINE_SECRET_KEYS=Fernet.generate_key().decode(),
    )

    assert result.returncode == 0, result.stderr


def test_zero_setup_default_is_sqlite_and_embedded_broker():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.DEBUG, s.USE_TZ, s.CELERY_TIMEZONE)"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY"}}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True, text=True, timeout=60,
    )

    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem://localhost//", "True", "True", "UTC"]


def test_database_and_redis_urls_switch_to_production_services():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.CACHES['default']['BACKEND'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/anything",
        "REDIS_URL": "redis://127.0.0.1:6379/3",
    }
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert result.stdout.split() == [
        "django.db.backends.postgresql", "redis://127.0.0.1:6379/3", "django.core.cache.backends.redis.RedisCache",
    ]
