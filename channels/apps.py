from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "channels"
    label = "channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        # Stock, listing and channel changes mark listings for a push and schedule it; processed and
        # cancelled orders are confirmed to their channel; beat rows follow each channel.
        from channels import events, receivers  # noqa: F401
