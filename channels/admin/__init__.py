"""The channels app's admin, one module per screen; importing this package registers them all.

- channel.py: ChannelAdmin, the Channel Integration list and each channel's config page (fields, forms,
  save and delete through channels.services);
- channel_views.py: ChannelAdmin's own pages (Test, Test before Save, Reauthorise, Download listings and its
  status, the location, order status and shipping mapping pages, the sync dashboard);
- presentation.py: the HTML those screens draw (health, last runs, buttons, progress bar, mapping summaries);
- filters.py: the listing list's filters;
- listings.py, mappings.py, runs.py: the listings, the mapping lists and the sync run log;
- stock.py: the stock item page's "What each channel gets" section, added from the channels side.
"""

from channels.admin import channel, listings, mappings, runs, stock  # noqa: F401
