"""Production settings: `check --deploy` is clean, and the process refuses to start without its keys."""

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k3y-" + "x9Qz!" * 12,
    "ALLOWED_HOSTS": "stock.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://stock.example.com",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py in a clean production-like environment: only PATH is inherited, so nothing a developer or
    another test exported (DJANGO_ALLOW_ASYNC_UNSAFE, DATABASE_URL, ...) changes the verdict."""
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True, text=True, timeout=120,
    )


def test_production_settings_pass_check_deploy_with_no_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING",
                    **PRODUCTION, STOCKLINE_SECRET_KEYS=Fernet.generate_key().decode())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stderr


def test_behind_a_proxy_that_redirects_to_https_itself_check_deploy_stays_clean():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION,
                    STOCKLINE_SECRET_KEYS=Fernet.generate_key().decode(),
                    SECURE_SSL_REDIRECT="false", SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")

    assert result.returncode == 0, result.stdout + result.stderr


def test_dropping_hsts_is_reported_by_check_deploy():
    # The check is real: weakening a setting makes it fail.
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION,
                    STOCKLINE_SECRET_KEYS=Fernet.generate_key().decode(), SECURE_HSTS_SECONDS="0")

    assert result.returncode != 0 and "security.W004" in result.stderr


def test_production_without_secret_keys_refuses_to_start_with_one_clear_line():
    result = manage("check", **PRODUCTION)

    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].endswith("STOCKLINE_SECRET_KEYS must be set when DEBUG is off.")


def test_rotate_secrets_with_a_malformed_key_exits_non_zero_with_one_line(tmp_path):
    result = manage("rotate_secrets", STOCKLINE_SECRET_KEYS="not-a-fernet-key",
                    DATABASE_URL=f"sqlite:///{tmp_path / 'rotate.sqlite3'}")

    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "CommandError: STOCKLINE_SECRET_KEYS: key 1 is not a Fernet key (32 url-safe base64-encoded bytes). "
        "Nothing was changed."
    ]
