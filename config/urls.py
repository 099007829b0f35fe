from django.contrib import admin
from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from channels.admin.oauth import CALLBACK_URL_NAME, oauth_callback
from channels.sync.account_deletion import ACCOUNT_DELETION_URL_NAME
from channels.sync.order_hints import WEBHOOK_URL_NAME
from channels.webhooks import channel_account_deletion, channel_webhook

admin.site.site_header = admin.site.site_title = "Stockline"
admin.site.index_title = "Channels, orders and stock"

urlpatterns = [
    # Where a channel's consent page sends the seller back (channels.admin.oauth); before the admin's own
    # URLs, whose catch-all would take it. Staff signed in only, as every admin page.
    path("admin/channels/oauth/callback/", admin.site.admin_view(oauth_callback), name=CALLBACK_URL_NAME),
    path("admin/", admin.site.urls),
    # The channels' order webhooks: one unguessable path per channel (channels.sync.order_hints).
    path("webhooks/<int:channel_id>/<str:token>/", channel_webhook, name=WEBHOOK_URL_NAME),
    # A channel's account deletion notices (eBay's, required of every application): channels.sync.account_deletion.
    path("webhooks/<int:channel_id>/<str:token>/account-deletion/", channel_account_deletion,
         name=ACCOUNT_DELETION_URL_NAME),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("favicon.ico", RedirectView.as_view(url=static("stockline/favicon.svg"), permanent=False)),
]
