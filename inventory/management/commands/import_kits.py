from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from inventory.services import kits_import_csv


class Command(BaseCommand):
    help = (
        "Make kits from a CSV file with the columns sku, component_sku, quantity (header row required): one row "
        "per component of each kit. All or nothing: every bad row is reported with its line number and nothing of "
        "the file is applied."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="The CSV file.")

    def handle(self, *args, file: Path, **options):
        try:
            with file.open("rb") as handle:
                changed = kits_import_csv(file=handle)
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from exc
        except ValidationError as exc:
            raise CommandError(f"{file}: {' '.join(exc.messages)} Nothing was imported.") from exc
        self.stdout.write(f"{file}: {changed} kits made or changed.")
