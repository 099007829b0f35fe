from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from inventory.services import stock_import_csv


class Command(BaseCommand):
    help = (
        "Set stock levels from a CSV file with the columns sku, location, quantity (header row required). "
        "All or nothing: every bad row is reported with its line number and nothing of the file is applied."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="The CSV file.")

    def handle(self, *args, file: Path, **options):
        try:
            with file.open("rb") as handle:
                changed = stock_import_csv(file=handle, user=None)
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from exc
        except ValidationError as exc:
            raise CommandError(f"{file}: {' '.join(exc.messages)} Nothing was imported.") from exc
        self.stdout.write(f"{file}: {changed} stock levels changed.")
