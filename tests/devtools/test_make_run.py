"""`make run` in a clean clone, stopped by Ctrl-C: every process it started is gone within 15 s."""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
# The clone starts the demo from scratch (migrations, the demo shop) before the admin answers.
STARTUP_SECONDS = 240
STOP_SECONDS = 15
NUL = bytes(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_in(directory: Path) -> list[str]:
    """The processes whose working directory is inside `directory`, as "pid command" lines."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if Path(os.readlink(proc / "cwd")).is_relative_to(directory):
                command = (proc / "cmdline").read_bytes().replace(NUL, b" ").decode()
                found.append(f"{proc.name} {command}")
        except OSError:
            continue
    return found


@pytest.fixture
def clean_clone(tmp_path):
    if shutil.which("git") is None or shutil.which("make") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git, make and this project's repository")
    if not (ROOT / ".venv" / ".installed").exists():
        pytest.skip("needs the project's installed .venv (make install)")
    clone = tmp_path / "stockline"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    # The clone shares this checkout's installed packages: make's install step sees them up to date.
    (clone / ".venv").symlink_to(ROOT / ".venv")
    os.utime(clone / "requirements.txt", (0, 0))
    yield clone
    for line in processes_in(clone):
        os.kill(int(line.split()[0]), signal.SIGKILL)


def test_ctrl_c_on_make_run_stops_every_process_it_started(clean_clone):
    port, sandbox_port = free_port(), free_port()
    # The zero-setup defaults: no database or broker settings from the test run's environment.
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
    make = subprocess.Popen(
        ["make", "run", f"PORT={port}", f"SANDBOX_PORT={sandbox_port}"], cwd=clean_clone, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and make.poll() is None:
        try:
            if requests.get(f"http://127.0.0.1:{port}/admin/login/", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        time.sleep(1)
    else:
        pytest.fail(f"make run did not serve the admin within {STARTUP_SECONDS} s (exit {make.poll()})")
    started = processes_in(clean_clone)
    assert any("celery" in line for line in started) and any("run_sandbox" in line for line in started), started

    # What the terminal does on Ctrl-C: SIGINT to the foreground process group.
    os.killpg(make.pid, signal.SIGINT)
    make.wait(timeout=STOP_SECONDS + 5)
    deadline = time.monotonic() + STOP_SECONDS
    while processes_in(clean_clone) and time.monotonic() < deadline:
        time.sleep(0.5)

    assert processes_in(clean_clone) == [], "left running after Ctrl-C"
    assert make.returncode is not None and make.returncode != -signal.SIGSEGV
