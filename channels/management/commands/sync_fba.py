from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from channels.connectors.base import ChannelError
from channels.management.commands._channel_command import ChannelCommand, one_line
from channels.sync.fba.stock import fba_inventory_sync
from channels.sync.locks import channel_lock


class Command(ChannelCommand):
    help = (
        "Set the named Amazon channel's FBA location to the stock Amazon can fulfil (FBA inventory "
        "summaries). Needs FBA enabled and FBA sync inventory on that channel."
    )

    def handle(self, *args, name, **options):
        channel = self.channel(name)
        with channel_lock(channel_id=channel.pk, purpose="fba", wait=60) as held:
            if not held:
                raise CommandError(f"{channel.name}: another FBA sync is running")
            try:
                run = fba_inventory_sync(channel_id=channel.pk)
            except ValidationError as exc:
                raise CommandError(one_line(" ".join(exc.messages))) from exc
            except ChannelError as exc:
                raise CommandError(one_line(f"{channel.name}: {exc}")) from exc
        unknown = f", {run.failed} SKU(s) not matched to a stock item" if run.failed else ""
        self.stdout.write(
            f"{channel.name}: {run.processed} FBA stock level(s) changed, {run.skipped} already right{unknown} "
            f"({run.get_status_display().lower()})"
        )
