"""Reauthorise without copying codes: the Reauthorise page links to the channel's consent page, which (the
sandbox playing Amazon's Seller Central and EKM's /connect/authorize) sends the seller back to the hub's
callback; the callback checks the state it signed and reauthorises the channel, or refuses and changes nothing."""

import time
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core import signing
from django.urls import reverse

from channels.admin.oauth import CONSENT_SALT
from channels.models import Channel
from channels.sync.connections import channel_test
from sandbox.control import default_credentials
from tests.channels.factories import AmazonChannelFactory, ChannelFactory, RakutenChannelFactory
from tests.faults.conftest import connect

pytestmark = pytest.mark.django_db

CALLBACK = "http://testserver/admin/channels/oauth/callback/"
APPLICATION_ID = "amzn1.sp.solution.11111111-2222-3333-4444-555555555555"
CODE_PARAMETER = {"amazon": "spapi_oauth_code", "ekm": "code"}
LABEL = {"amazon": "Amazon", "ekm": "EKM"}


def message_of(response) -> str:
    """The message the response left for the next page (the latest: a redirect not followed keeps earlier ones)."""
    return [str(m) for m in get_messages(response.wsgi_request)][-1]


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def consented_channel(sandbox, kind: str, **registered) -> Channel:
    """A channel on a sandbox account whose application registers the hub's callback (and, on Amazon, its id);
    flagged for reauthorisation, as a channel whose seller must consent again is."""
    account = f"{kind}-oauth"
    credentials = {**default_credentials(kind, account), "redirect_uris": [CALLBACK], **registered}
    if kind == "amazon":
        credentials.setdefault("application_id", APPLICATION_ID)
    sandbox.account(kind, account, credentials=credentials, rate_limits={"profile": "off"})
    url = sandbox.channel_url(kind, account)
    stored = {key: value for key, value in credentials.items() if key in ("client_id", "client_secret",
                                                                           "refresh_token")}
    factory = AmazonChannelFactory if kind == "amazon" else ChannelFactory
    account_settings = {"application_id": credentials["application_id"]} if kind == "amazon" else {}
    return factory(name=f"{kind} oauth", api_base_url=url, auth_base_url=url, credentials=stored, **account_settings,
                   needs_reauthorisation=True, reauthorisation_reason="HTTP 400 invalid_grant",
                   seller_id=f"A{account.upper()}SELLER" if kind == "amazon" else "")


def reauthorise_page(client, channel):
    return client.get(reverse("admin:channels_channel_reauthorise", args=(channel.pk,)))


def consent(url: str) -> str:
    """The seller at the channel's consent page, confirming: where the channel sends their browser back."""
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


@pytest.mark.parametrize("kind", ["amazon", "ekm"])
def test_the_consent_link_carries_a_state_naming_the_channel_and_user_and_the_callback(sandbox, admin_client, kind):
    channel = consented_channel(sandbox, kind)

    page = reauthorise_page(admin_client, channel)

    html = page.content.decode()
    link = page.context["consent_url"]
    assert f"Open {LABEL[kind]}'s consent page" in html and 'target="_blank"' in html
    assert "sends them back here" in html and 'name="authorization_code"' in html
    query = query_of(link)
    assert query["redirect_uri"] == CALLBACK
    user = User.objects.get(username="admin")
    assert signing.loads(query["state"], salt=CONSENT_SALT) == {"channel": channel.pk, "user": user.pk}
    if kind == "amazon":
        assert link.startswith(channel.auth_base_url + "/apps/authorize/consent?")
        assert query["application_id"] == APPLICATION_ID and "version" not in query
    else:
        assert link.startswith(channel.auth_base_url + "/connect/authorize?")
        assert query["client_id"] == channel.credentials["client_id"] and query["response_type"] == "code"
        assert "offline_access" in query["scope"].split()


def test_on_the_real_hosts_the_link_goes_to_seller_central_and_ekm(admin_client, settings):
    settings.STOCKLINE_PUBLIC_URL = "https://hub.example.com"
    amazon = AmazonChannelFactory(name="Amazon UK", api_base_url="https://sellingpartnerapi-eu.amazon.com",
                                  auth_base_url="https://api.amazon.com",
                                  credentials={"client_id": "c", "client_secret": "s", "refresh_token": "r"},
                                  application_id=APPLICATION_ID, application_draft=True)
    ekm = ChannelFactory(name="EKM shop", api_base_url="https://api.ekm.net", auth_base_url="https://api.ekm.net")

    amazon_link = reauthorise_page(admin_client, amazon).context["consent_url"]
    ekm_link = reauthorise_page(admin_client, ekm).context["consent_url"]

    assert amazon_link.startswith("https://sellercentral-europe.amazon.com/apps/authorize/consent?")
    assert query_of(amazon_link)["version"] == "beta"
    assert ekm_link.startswith("https://api.ekm.net/connect/authorize?")
    for link in (amazon_link, ekm_link):
        assert query_of(link)["redirect_uri"] == "https://hub.example.com/admin/channels/oauth/callback/"


@pytest.mark.parametrize("kind", ["amazon", "ekm"])
def test_coming_back_from_the_consent_page_reauthorises_the_channel(sandbox, admin_client, kind):
    channel = consented_channel(sandbox, kind)
    before = dict(channel.credentials)

    back = consent(reauthorise_page(admin_client, channel).context["consent_url"])
    response = admin_client.get(back)

    assert back.startswith(CALLBACK) and query_of(back)[CODE_PARAMETER[kind]]
    if kind == "amazon":
        assert query_of(back)["selling_partner_id"] == channel.seller_id
    assert response.status_code == 302
    assert response.url == reverse("admin:channels_channel_change", args=(channel.pk,))
    message = message_of(response)
    assert message.startswith(f"{channel.name}: Reauthorised") and "new refresh token" in message
    channel.refresh_from_db()
    assert channel.credentials["refresh_token"] != before["refresh_token"]
    assert not channel.needs_reauthorisation and channel.reauthorisation_reason == ""
    assert channel_test(channel_id=channel.pk).ok


def test_a_code_the_channel_refuses_keeps_the_stored_credentials_with_its_message(sandbox, admin_client):
    channel = consented_channel(sandbox, "ekm")
    back = consent(reauthorise_page(admin_client, channel).context["consent_url"])
    admin_client.get(back)
    channel.refresh_from_db()
    granted = dict(channel.credentials)
    Channel.objects.filter(pk=channel.pk).update(needs_reauthorisation=True, reauthorisation_reason="HTTP 401")

    # The same code again (a reload of the callback): EKM takes a code once.
    response = admin_client.get(back)

    message = message_of(response)
    assert message.startswith(f"{channel.name}: Authorisation failed") and "stored credentials are unchanged" in message
    channel.refresh_from_db()
    assert channel.credentials == granted and channel.needs_reauthorisation


def _assert_refused(response, channel: Channel, before: dict, words: str) -> None:
    assert response.status_code == 302
    message = message_of(response)
    assert words in message and "Nothing was changed" in message
    channel.refresh_from_db()
    assert channel.credentials == before and channel.needs_reauthorisation


@pytest.mark.parametrize("kind", ["amazon", "ekm"])
def test_a_tampered_state_is_refused_and_nothing_changes(sandbox, admin_client, kind):
    channel = consented_channel(sandbox, kind)
    before = dict(channel.credentials)
    back = consent(reauthorise_page(admin_client, channel).context["consent_url"])
    query = query_of(back)
    forged = forged_state(channel.pk)

    for state in (query["state"][:-2] + "xy", "", forged):
        response = admin_client.get(CALLBACK, {**query, "state": state})
        _assert_refused(response, channel, before, "state this hub did not issue")


def forged_state(channel_id: int) -> str:
    """A state naming the channel, signed with a key that is not the hub's."""
    return signing.dumps({"channel": channel_id, "user": 1}, key="not-the-hub-key", salt=CONSENT_SALT)


def test_a_state_older_than_fifteen_minutes_is_refused_and_nothing_changes(sandbox, admin_client):
    channel = consented_channel(sandbox, "amazon")
    before = dict(channel.credentials)
    sixteen_minutes_ago = time.time() - 16 * 60
    with mock.patch("django.core.signing.time.time", return_value=sixteen_minutes_ago):
        link = reauthorise_page(admin_client, channel).context["consent_url"]
    back = consent(link)

    response = admin_client.get(back)

    _assert_refused(response, channel, before, "more than 15 minutes")


def test_a_state_opened_by_another_user_is_refused(sandbox, admin_client, client):
    channel = consented_channel(sandbox, "ekm")
    before = dict(channel.credentials)
    back = consent(reauthorise_page(admin_client, channel).context["consent_url"])
    client.force_login(User.objects.create_superuser("other", "other@example.com", "pw"))

    response = client.get(back)

    _assert_refused(response, channel, before, "started by another user")


def test_a_declined_consent_comes_back_without_a_code_and_changes_nothing(sandbox, admin_client):
    channel = consented_channel(sandbox, "ekm")
    before = dict(channel.credentials)
    state = query_of(reauthorise_page(admin_client, channel).context["consent_url"])["state"]

    response = admin_client.get(CALLBACK, {"state": state, "error": "access_denied"})

    _assert_refused(response, channel, before, "EKM sent no authorisation code back: access_denied")


def test_the_callback_needs_a_signed_in_staff_user(sandbox, admin_client, client):
    channel = consented_channel(sandbox, "ekm")
    back = consent(reauthorise_page(admin_client, channel).context["consent_url"])

    response = client.get(back)

    assert response.status_code == 302 and response.url.startswith(reverse("admin:login"))
    assert Channel.objects.get(pk=channel.pk).credentials == channel.credentials


def test_rakuten_shows_no_consent_link_only_the_token_field(admin_client):
    channel = RakutenChannelFactory(name="Rakuten FR", credentials={"token": "t"})

    page = reauthorise_page(admin_client, channel)

    html = page.content.decode()
    assert page.context["consent_url"] is None
    assert 'id="consent"' not in html and "Open Rakuten" not in html and 'name="authorization_code"' in html


def test_amazon_without_an_application_id_keeps_the_code_field_alone(sandbox, admin_client):
    channel = connect(sandbox, "amazon")

    page = reauthorise_page(admin_client, channel)

    assert page.context["consent_url"] is None and 'id="consent"' not in page.content.decode()


def test_amazon_consent_by_another_seller_than_the_channels_is_refused(sandbox, admin_client):
    channel = consented_channel(sandbox, "amazon")
    Channel.objects.filter(pk=channel.pk).update(seller_id="AOTHERSELLER")
    before = dict(channel.credentials)
    back = consent(reauthorise_page(admin_client, channel).context["consent_url"])

    response = admin_client.get(back)

    _assert_refused(response, channel, before, "but this channel is seller AOTHERSELLER")


def test_the_amazon_account_settings_hold_the_application_id_other_kinds_do_not_ask_for_it(admin_client):
    amazon = AmazonChannelFactory(name="Amazon UK")
    ekm = ChannelFactory(name="EKM shop")

    amazon_page = admin_client.get(reverse("admin:channels_channel_change", args=(amazon.pk,))).content.decode()
    ekm_page = admin_client.get(reverse("admin:channels_channel_change", args=(ekm.pk,))).content.decode()

    assert 'name="application_id"' in amazon_page and 'name="application_draft"' in amazon_page
    assert "not the LWA client id" in amazon_page
    assert 'name="application_id"' not in ekm_page and 'name="application_draft"' not in ekm_page
