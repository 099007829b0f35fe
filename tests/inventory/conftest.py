import pytest


@pytest.fixture
def pushes_queued(monkeypatch):
    """The channel of every inventory push queued with Celery, in order: what follows a stock change."""
    pushes = []
    monkeypatch.setattr("channels.tasks.inventory_push_task.apply_async", lambda args, **kw: pushes.append(args[0]))
    return pushes
