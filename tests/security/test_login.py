"""Login throttling on the admin: a lockout after repeated failures, with a cool-off and a clear message."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff():
    return User.objects.create_user("sam", password=PASSWORD, is_staff=True, is_superuser=True)


def login(client, password: str):
    return client.post(reverse("admin:login"), {"username": "sam", "password": password, "next": "/admin/"})


def test_five_failures_lock_the_account_even_against_the_right_password(client, staff):
    configured = (settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME)
    assert configured == (5, timedelta(minutes=15))
    for _ in range(4):
        assert login(client, "wrong").status_code == 200  # the usual "enter a correct username" page
    fifth = login(client, "wrong")

    locked = login(client, PASSWORD)

    for response in (fifth, locked):
        page = response.content.decode()
        assert response.status_code == 429
        assert "Too many failed sign-in attempts" in page and "15 minutes" in page
        assert 'name="password"' in page  # still the admin's login page, not a bare error
    assert "_auth_user_id" not in client.session


def test_the_lock_lifts_after_the_cool_off(client, staff):
    for _ in range(5):
        login(client, "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    response = login(client, PASSWORD)

    assert response.status_code == 302 and client.session["_auth_user_id"] == str(staff.pk)


def test_a_successful_login_resets_the_count(client, staff):
    for _ in range(4):
        login(client, "wrong")
    assert login(client, PASSWORD).status_code == 302
    client.logout()

    for _ in range(4):
        login(client, "wrong")

    assert login(client, PASSWORD).status_code == 302


def test_a_lockout_is_per_address_and_username_so_others_still_sign_in(client, staff):
    User.objects.create_user("kim", password=PASSWORD, is_staff=True)
    for _ in range(5):
        login(client, "wrong")

    response = client.post(reverse("admin:login"), {"username": "kim", "password": PASSWORD, "next": "/admin/"})

    assert response.status_code == 302
