import gzip
import logging

import pytest
import requests
import responses

from channels.connectors.base import (
    ChannelAuthError,
    ChannelHostRefused,
    ChannelPayloadError,
    ChannelRateLimited,
    ChannelRejected,
    ChannelResponseTooLarge,
    ChannelTransientError,
    ConnectorConfig,
    HttpBounds,
    RateLimit,
)
from channels.connectors.http import HttpClient, gunzip_bounded, numbered_pages, redact, token_pages

BASE = "https://api.example.test"
HOSTS = frozenset({"api.example.test"})
SECRET = "tok-SUPER-secret-123"


def client(limiter, *, auth=None, limits=None, sleep=lambda s: None):
    return HttpClient(
        service="Test", base_url=BASE, limiter=limiter, limits=limits or {"op": RateLimit(10, 10)},
        bucket_prefix="1", secrets=lambda: {SECRET}, allowed_hosts=HOSTS, auth=auth, sleep=sleep,
    )


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, "", ChannelAuthError),
        (403, {"errors": [{"code": "Unauthorized", "message": "Access to requested resource is denied."}]},
         ChannelAuthError),
        (400, {"error": "invalid_grant", "error_description": "bad refresh token"}, ChannelAuthError),
        (500, {"errors": [{"code": "InternalFailure", "message": "oops"}]}, ChannelTransientError),
        (503, "", ChannelTransientError),
        (422, {"validation_result": [{"member_names": ["name"], "error_message": "Name is required"}]},
         ChannelRejected),
        (404, {"errors": [{"code": "NotFound", "message": "No such order"}]}, ChannelRejected),
    ],
)
def test_each_failure_becomes_its_typed_error(limiter, status, body, error):
    kwargs = {"json": body} if isinstance(body, dict) else {"body": body}
    responses.add(responses.GET, f"{BASE}/thing", status=status, **kwargs)
    with pytest.raises(error):
        client(limiter).request("GET", "/thing", operation="op")


@responses.activate
def test_a_refusal_carries_the_channels_reason(limiter):
    responses.add(responses.PUT, f"{BASE}/p", status=422,
                  json={"validation_result": [{"member_names": ["name"], "error_message": "Name is required"}]})
    with pytest.raises(ChannelRejected, match="name: Name is required"):
        client(limiter).request("PUT", "/p", operation="op")


@responses.activate
def test_a_refusal_names_each_field_of_ekms_errors_object_with_its_message(limiter):
    responses.add(responses.PUT, f"{BASE}/p", status=400, json={
        "meta": {}, "links": [], "validation_result": None, "data": None,
        "errors": {"Quantity": "must be >= 0", "Price": "x" * 500, "RefreshToken": "r-9 was already spent",
                   "Name": None}})
    with pytest.raises(ChannelRejected) as caught:
        client(limiter).request("PUT", "/p", operation="op")
    message = str(caught.value)
    assert "Quantity: must be >= 0; Price: " in message and "; RefreshToken; Name" in message
    assert "x" * 100 in message and "x" * 101 not in message
    assert "r-9" not in message


@responses.activate
def test_a_refusal_whose_errors_is_one_sentence_reads_as_that_sentence(limiter):
    responses.add(responses.PUT, f"{BASE}/p", status=400, json={"errors": "The product does not exist"})
    with pytest.raises(ChannelRejected, match="The product does not exist"):
        client(limiter).request("PUT", "/p", operation="op")


@responses.activate
def test_429_carries_retry_after(limiter):
    responses.add(responses.GET, f"{BASE}/thing", status=429, headers={"Retry-After": "30"},
                  json={"errors": [{"code": "QuotaExceeded"}]})
    with pytest.raises(ChannelRateLimited) as caught:
        client(limiter).request("GET", "/thing", operation="op")
    assert caught.value.retry_after == 30


@responses.activate
def test_429_without_retry_after_waits_for_the_buckets_next_token(limiter):
    responses.add(responses.GET, f"{BASE}/thing", status=429, json={"errors": [{"code": "QuotaExceeded"}]})
    slow = {"op": RateLimit(0.0056, 20)}
    with pytest.raises(ChannelRateLimited) as caught:
        client(limiter, limits=slow).request("GET", "/thing", operation="op")
    assert caught.value.retry_after == pytest.approx(1 / 0.0056)


@responses.activate
def test_a_short_429_is_waited_out_once_then_the_call_goes_through():
    slept = []
    from channels.connectors.ratelimit import InProcessLimiter

    limiter = InProcessLimiter(sleep=slept.append)
    responses.add(responses.GET, f"{BASE}/thing", status=429, headers={"Retry-After": "2"})
    responses.add(responses.GET, f"{BASE}/thing", json={"ok": True})
    response = client(limiter).request("GET", "/thing", operation="op")
    assert response.json() == {"ok": True}
    assert slept and slept[0] == pytest.approx(2, abs=0.1)


@responses.activate
def test_a_turn_taken_ahead_is_the_next_calls_token_so_that_call_waits_no_longer():
    from channels.connectors.ratelimit import InProcessLimiter

    now, slept = [0.0], []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = InProcessLimiter(clock=lambda: now[0], sleep=sleep)
    responses.add(responses.POST, f"{BASE}/import", json={"ok": True})
    one_per_30_s = {"op": RateLimit(1 / 30, 1)}
    http = client(limiter, limits=one_per_30_s)
    http.request("POST", "/import", operation="op")

    http.turn_take("op")
    assert slept == [pytest.approx(30)]
    http.request("POST", "/import", operation="op")
    assert len(slept) == 1, "the call after the turn goes at once, with the token the turn took"
    http.request("POST", "/import", operation="op")
    assert slept[1:] == [pytest.approx(30)], "the turn paid for one call only"


@responses.activate
def test_timeouts_and_connection_errors_are_transient(limiter):
    responses.add(responses.GET, f"{BASE}/slow", body=requests.ReadTimeout("read timed out"))
    responses.add(responses.GET, f"{BASE}/down", body=requests.ConnectionError(f"refused {BASE}/down?pwd={SECRET}"))
    with pytest.raises(ChannelTransientError, match="no answer"):
        client(limiter).request("GET", "/slow", operation="op")
    with pytest.raises(ChannelTransientError) as caught:
        client(limiter).request("GET", "/down", operation="op")
    assert SECRET not in str(caught.value)


@responses.activate
def test_every_call_has_a_timeout(limiter):
    seen = {}

    def capture(request):
        seen["timeout"] = request.req_kwargs.get("timeout")
        return 200, {}, "{}"

    responses.add_callback(responses.GET, f"{BASE}/thing", callback=capture)
    client(limiter).request("GET", "/thing", operation="op")
    assert seen["timeout"] and all(seen["timeout"])


@responses.activate
def test_an_expired_token_is_refreshed_once_and_the_call_repeated(limiter):
    tokens = iter(["old", "new"])
    current = {"token": next(tokens)}

    def auth(refresh):
        if refresh:
            current["token"] = next(tokens)
        return {"x-amz-access-token": current["token"]}

    responses.add(responses.GET, f"{BASE}/thing", status=403, json={"errors": [{"code": "Unauthorized"}]})
    responses.add(responses.GET, f"{BASE}/thing", json={"ok": True})
    assert client(limiter, auth=auth).request("GET", "/thing", operation="op").json() == {"ok": True}
    assert [c.request.headers["x-amz-access-token"] for c in responses.calls] == ["old", "new"]


@responses.activate
def test_a_token_refused_twice_is_an_auth_error(limiter):
    responses.add(responses.GET, f"{BASE}/thing", status=401)
    with pytest.raises(ChannelAuthError):
        client(limiter, auth=lambda refresh: {"Authorization": "Bearer x"}).request("GET", "/thing", operation="op")
    assert len(responses.calls) == 2


@responses.activate
def test_an_answer_that_is_not_json_is_a_payload_error(limiter):
    responses.add(responses.GET, f"{BASE}/thing", body="<html>gateway</html>")
    with pytest.raises(ChannelPayloadError):
        client(limiter).call_json("GET", "/thing", operation="op")


@responses.activate
def test_no_secret_reaches_a_log_record_or_an_exception(limiter, caplog):
    caplog.set_level(logging.DEBUG)
    responses.add(responses.GET, f"{BASE}/ws", status=400, body=f"bad token {SECRET}")
    with pytest.raises(ChannelRejected) as caught:
        client(limiter).request("GET", "/ws", operation="op", params={"login": "bob", "pwd": SECRET})
    assert SECRET not in str(caught.value)
    assert caplog.records
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_urllib3_request_lines_are_redacted(caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3.connectionpool").debug(
        '%s://%s:%s "%s %s %s" %s %s', "https", "ws.example", 443, "GET", f"/sales_ws?login=a&pwd={SECRET}",
        "HTTP/1.1", 200, None,
    )
    assert SECRET not in caplog.text
    assert "pwd=***" in caplog.text


def test_redact_hides_known_secrets_and_secret_parameters():
    text = redact(f'url?pwd=abc&x=1 {{"refresh_token": "r-1"}} {SECRET}', [SECRET])
    assert "abc" not in text and "r-1" not in text and SECRET not in text
    assert "x=1" in text


def test_token_pages_follow_tokens_until_none_and_refuse_a_loop():
    pages = {"": ("a", "t1"), "t1": ("b", "t2"), "t2": ("c", "")}
    assert list(token_pages(lambda token: pages[token])) == ["a", "b", "c"]
    looping = {"": ("a", "t1"), "t1": ("b", "t1")}
    with pytest.raises(ChannelPayloadError):
        list(token_pages(lambda token: looping[token]))


def test_numbered_pages_stop_at_the_total():
    asked = []

    def fetch(number):
        asked.append(number)
        return number * 10, 3

    assert list(numbered_pages(fetch)) == [10, 20, 30]
    assert asked == [1, 2, 3]


def test_query_times_keep_what_changed_in_the_last_second_of_an_exclusive_bound():
    from datetime import UTC, datetime

    from channels.connectors.values import iso_z

    moment = datetime(2026, 11, 29, 10, 15, 0, 400_000, tzinfo=UTC)
    assert iso_z(moment) == "2026-11-29T10:15:00Z"
    assert iso_z(moment, round_up=True) == "2026-11-29T10:15:01Z"
    assert iso_z(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"


def test_for_channel_sends_credentials_only_to_the_channels_hosts_within_its_bounds(limiter):
    bounds = HttpBounds(deadline=7, connect_timeout=2, max_response_bytes=1000, document_deadline=70,
                        max_document_bytes=5000)
    config = ConnectorConfig(channel_id=9, kind="amazon", name="Amazon UK", api_base_url=BASE + "/",
                             auth_base_url=BASE, allowed_hosts=frozenset({"api.example.test"}), http=bounds)
    http = HttpClient.for_channel(config, service="Test", limiter=limiter, limits={}, secrets=lambda: ())
    assert (http.base_url, http.bucket_prefix, http.allowed_hosts) == (BASE, "9", {"api.example.test"})
    assert (http.deadline, http.timeout[0], http.max_response_bytes) == (7, 2, 1000)
    assert (http.document_deadline, http.max_document_bytes) == (70, 5000)
    with pytest.raises(ChannelHostRefused, match="elsewhere.test"):
        http.request("GET", "https://elsewhere.test/x", operation="op", absolute=True, authenticated=False)


@responses.activate
def test_a_compressed_answer_is_read_and_only_encodings_the_hub_bounds_are_offered(limiter):
    seen = {}

    def gzipped(request):
        seen["accept"] = request.headers["Accept-Encoding"]
        return 200, {"Content-Encoding": "gzip"}, gzip.compress(b'{"ok": true}')

    responses.add_callback(responses.GET, f"{BASE}/thing", callback=gzipped)
    assert client(limiter).call_json("GET", "/thing", operation="op") == {"ok": True}
    assert seen["accept"] == "gzip, deflate"


@responses.activate
def test_an_encoding_the_hub_cannot_bound_is_a_payload_error(limiter):
    responses.add(responses.GET, f"{BASE}/thing", body=b"\x00\x01", headers={"Content-Encoding": "br"})
    with pytest.raises(ChannelPayloadError, match="'br'"):
        client(limiter).request("GET", "/thing", operation="op")


@responses.activate
def test_a_declared_length_over_the_limit_is_refused(limiter):
    responses.add(responses.GET, f"{BASE}/thing", body=b"x" * 2000)
    http = HttpClient(service="Test", base_url=BASE, limiter=limiter, limits={}, bucket_prefix="1",
                      secrets=lambda: (), allowed_hosts=HOSTS, max_response_bytes=1000)
    with pytest.raises(ChannelResponseTooLarge, match="1000 bytes"):
        http.request("GET", "/thing", operation="op")


@responses.activate
def test_documents_go_up_and_down_without_the_access_token(limiter):
    responses.add(responses.PUT, "https://s3.example.test/in?X-Amz-Signature=abc")
    responses.add(responses.GET, "https://s3.example.test/out", body=gzip.compress(b"sku\tqty\n"))
    http = client(limiter, auth=lambda refresh: {"x-amz-access-token": SECRET})
    http.upload("https://s3.example.test/in?X-Amz-Signature=abc", operation="upload", data=b"feed",
                content_type="text/tab-separated-values")
    assert http.download("https://s3.example.test/out", operation="download", gunzip=True) == b"sku\tqty\n"
    assert all("x-amz-access-token" not in call.request.headers for call in responses.calls)
    assert responses.calls[0].request.headers["Content-Type"] == "text/tab-separated-values"


@responses.activate
def test_a_refused_download_is_an_expired_address_not_a_gzip_error_nor_a_reauthorisation(limiter):
    responses.add(responses.GET, "https://s3.example.test/out", status=403, body="<Error>AccessDenied</Error>")
    with pytest.raises(ChannelTransientError, match="AccessDenied.*expired"):
        client(limiter).download("https://s3.example.test/out", operation="download", gunzip=True)


def test_gunzip_bounded_reads_every_member_and_stops_at_the_limit():
    assert gunzip_bounded(gzip.compress(b"abc") + gzip.compress(b"def"), limit=6) == b"abcdef"
    assert gunzip_bounded(b"", limit=1) == b""
    with pytest.raises(ChannelResponseTooLarge):
        gunzip_bounded(gzip.compress(b"a" * 10_000_000), limit=1_000_000)
    with pytest.raises(ChannelPayloadError, match="cut short"):
        gunzip_bounded(gzip.compress(b"a" * 1000)[:-12], limit=10_000)
    with pytest.raises(ChannelPayloadError, match="corrupt"):
        gunzip_bounded(b"not gzip at all", limit=10_000)
