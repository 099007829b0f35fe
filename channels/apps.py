from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "channels"
    label = "channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        # Stock, listing and channel changes mark listings for a push and schedule it.
        from channels import receivers  # noqa: F401
