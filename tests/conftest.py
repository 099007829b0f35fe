import pytest
from celery import current_app
from django.conf import settings
from django.core.cache import cache


def pytest_collection_modifyitems(config, items):
    on_postgres = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL row locks: set DATABASE_URL to a PostgreSQL server")
    skip_redis = pytest.mark.skip(reason="needs a Redis server: set REDIS_URL")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True, scope="session")
def private_var_dir(tmp_path_factory):
    """File locks of this run live apart from a running `make run` worker's and from other test runs'."""
    settings.VAR_DIR = tmp_path_factory.mktemp("var")


@pytest.fixture(autouse=True, scope="session")
def tasks_run_inline():
    """Tasks run in the test's own process and their errors surface in the test; nothing reaches the
    broker a developer's `make run` worker reads. The worker test on Redis sets up its own."""
    current_app.conf.update(task_always_eager=True, task_eager_propagates=True, broker_url="memory://")


@pytest.fixture(autouse=True)
def eager_join_flag_reset():
    """Celery's eager apply() sets a process-wide "joining would block" flag and restores what it found; eager
    tasks run from several threads at once (the race tests) can leave it set, and every later result.get()
    would then refuse. Each test starts with it as a fresh process has it."""
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)
    yield


@pytest.fixture(autouse=True)
def fresh_cache():
    """Debounce keys, rate-limit buckets and locks from one test must not decide the next (ids are reused).

    With Redis the cache is the Redis database, so clearing it clears the shared buckets and locks too."""
    from channels.connectors.ratelimit import in_process_limiter

    cache.clear()
    in_process_limiter().reset()
    yield
    cache.clear()


@pytest.fixture(scope="session")
def sandbox_url():
    """One sandbox server (emulated channel APIs) for the session, on a free port."""
    from sandbox.testing import running_sandbox

    with running_sandbox(check_answers=True) as base_url:
        yield base_url


@pytest.fixture
def sandbox(sandbox_url):
    """A `SandboxControl` on a freshly reset sandbox (`sandbox.base_url` is the server)."""
    from sandbox.control import SandboxControl

    control = SandboxControl(sandbox_url)
    control.reset()
    yield control
    control.session.close()
