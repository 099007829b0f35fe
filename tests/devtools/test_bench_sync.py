"""bench_sync's bad arguments: one readable line each, before anything is built or started."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.mark.parametrize(("arguments", "says"), [
    (["--place-on", "amazon,etsy"],
     "--place-on takes channel kinds among amazon, ebay, ekm, rakuten, shopify, woocommerce: etsy."),
    (["--place-on", ","],
     "--place-on takes channel kinds among amazon, ebay, ekm, rakuten, shopify, woocommerce: none given."),
    (["--every", "0"], "--duration and --every are seconds above 0"),
    (["--duration", "5", "--every", "10"], "--every no longer than --duration"),
    (["--timeout", "-1"], "--timeout is seconds above 0."),
    (["--concurrency", "0"], "--concurrency is at least 1 worker process."),
    (["--webhooks", "--place-on", "amazon,rakuten"],
     "--webhooks measures the orders of ekm, shopify, woocommerce: include one of them in --place-on."),
])
def test_a_bad_argument_is_one_line_naming_it(arguments, says):
    with pytest.raises(CommandError) as refused:
        call_command("bench_sync", *arguments)
    assert says in str(refused.value)
    assert "\n" not in str(refused.value)


def test_webhooks_need_debug_on_for_the_plain_http_hub_server(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--webhooks needs DEBUG on"):
        call_command("bench_sync", "--webhooks")
