from django.core.management.base import BaseCommand, CommandError

from inventory.models import Location, StockItem
from orders.services import open_orders_recount


class Command(BaseCommand):
    help = (
        "Recount what open orders hold at each location and correct 'in open orders' where it differs "
        "(it also runs nightly). With --check, only report: exit 1 if anything differs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Report the differences without correcting them.")

    def handle(self, *args, check, **options):
        differences = open_orders_recount(correct=not check)
        skus = dict(StockItem.objects.filter(pk__in={d.stock_item_id for d in differences}).values_list("pk", "sku"))
        places = dict(Location.objects.filter(pk__in={d.location_id for d in differences}).values_list("pk", "name"))
        for d in differences:
            self.stdout.write(
                f"{skus[d.stock_item_id]} at {places[d.location_id]}: in open orders was {d.recorded}, "
                f"open orders hold {d.counted}{'' if check else ' (corrected)'}"
            )
        if not differences:
            self.stdout.write("In open orders matches the open orders everywhere.")
        elif check:
            raise CommandError(f"{len(differences)} stock level(s) differ from their open orders: "
                               "run recount_open_orders without --check to correct them.")
        else:
            self.stdout.write(f"{len(differences)} stock level(s) corrected; the channels get the new quantities.")
