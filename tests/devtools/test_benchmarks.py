import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("command", ["bench_sync", "load_test"])
def test_benchmarks_on_an_unmigrated_database_say_so_in_one_line(command, monkeypatch):
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("orders", "0099_next")])
    with pytest.raises(CommandError, match="is not migrated: run `python manage.py migrate` first"):
        call_command(command)
