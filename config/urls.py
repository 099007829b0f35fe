from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from channels.sync.order_hints import WEBHOOK_URL_NAME
from channels.webhooks import channel_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    # The channels' order webhooks: one unguessable path per channel (channels.sync.order_hints).
    path("webhooks/<int:channel_id>/<str:token>/", channel_webhook, name=WEBHOOK_URL_NAME),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
