"""The product as production runs it (DEBUG off) installs neither the sandbox nor the development tools, and the
hub (channels, orders, inventory, config) works without them: it never imports them."""

import ast
import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
HUB_PACKAGES = ("channels", "orders", "inventory", "config")
DEVELOPMENT_PACKAGES = {"sandbox", "devtools"}
DEVELOPMENT_COMMANDS = ("load_demo", "run_sandbox", "bench_inventory", "bench_sync", "bench_admin", "load_test")


def _run(*args: str, **env_overrides: str) -> subprocess.CompletedProcess:
    unset = {"SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL", "STOCKLINE_SECRET_KEYS", "STOCKLINE_DEVTOOLS"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings", **env_overrides}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _production(*args: str, **env_overrides: str) -> subprocess.CompletedProcess:
    return _run(*args, DEBUG="false", SECRET_KEY="x" * 60, ALLOWED_HOSTS="shop.example",
                STOCKLINE_SECRET_KEYS=Fernet.generate_key().decode(), **env_overrides)


def _commands(result: subprocess.CompletedProcess) -> set[str]:
    assert result.returncode == 0, result.stderr
    return {line.strip() for line in result.stdout.splitlines() if line.startswith("    ")}


def test_production_installs_neither_the_sandbox_nor_the_development_tools_and_passes_its_checks():
    apps = _production("-c", "import django; django.setup(); from django.conf import settings; "
                             "print(' '.join(settings.INSTALLED_APPS))")
    assert apps.returncode == 0, apps.stderr
    assert DEVELOPMENT_PACKAGES.isdisjoint(apps.stdout.split())
    assert "channels.apps.ChannelsConfig" in apps.stdout.split()

    check = _production("manage.py", "check")
    assert check.returncode == 0, check.stderr
    assert "System check identified no issues" in check.stdout

    commands = _commands(_production("manage.py", "help"))
    assert {"sync_orders", "sync_inventory", "rotate_secrets"} <= commands
    assert commands.isdisjoint(DEVELOPMENT_COMMANDS)


def test_every_hub_module_imports_in_production_without_loading_the_sandbox_or_the_development_tools():
    code = (
        "import importlib, pkgutil, sys, django; django.setup()\n"
        f"for package in {HUB_PACKAGES!r}:\n"
        "    for module in pkgutil.walk_packages(importlib.import_module(package).__path__, package + '.'):\n"
        "        importlib.import_module(module.name)\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = _production("-c", code)

    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert set(HUB_PACKAGES) <= loaded
    assert DEVELOPMENT_PACKAGES.isdisjoint(loaded)


def test_no_hub_module_imports_the_sandbox_or_the_development_tools():
    offenders = []
    for package in HUB_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {name}" for name in names
                              if name.split(".")[0] in DEVELOPMENT_PACKAGES]

    assert offenders == []


def test_debug_or_the_explicit_setting_installs_the_sandbox_and_the_development_tools():
    assert set(DEVELOPMENT_COMMANDS) <= _commands(_production("manage.py", "help", STOCKLINE_DEVTOOLS="true"))
    assert set(DEVELOPMENT_COMMANDS) <= _commands(_run("manage.py", "help"))
