from django.apps import AppConfig


class ChannelsConfig(AppConfig):
    name = "channels"
    label = "channels"
    verbose_name = "Channels"

    def ready(self) -> None:
        # Stock changes mark listings for a push and schedule it; processed and cancelled orders are
        # confirmed to their channel (subscriptions). Admins get the permissions each migrate creates.
        from channels import permissions, subscriptions  # noqa: F401
        from channels.order_checks import channel_cancellation_problems, channel_despatch_problems
        from orders.channel_checks import cancellation_check_register, despatch_check_register

        # Processing or cancelling an order asks what its channel would refuse before any stock moves.
        despatch_check_register(channel_despatch_problems)
        cancellation_check_register(channel_cancellation_problems)
        # Orders sent to Amazon's multi-channel fulfilment are Amazon's until it ships or gives them up.
        from channels.fulfilment import AMAZON_FULFILMENT
        from orders.external_fulfilment import external_fulfiller_register

        external_fulfiller_register(AMAZON_FULFILMENT)
