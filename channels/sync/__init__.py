"""The sync engine: one module per flow, each with one public entry, all run under one run policy.

- `order_download.orders_download` — pages of changed orders since Last Order Sync, the watermark.
- `order_mapping.order_data_from_external` — pure: one external order and the page's context → hub order data.
- `inventory_push.inventory_push` — plan (channels.selectors), send in batches, record and settle.
- `despatch.order_despatch_confirm` / `order_cancellation_confirm` — tell the channel an order shipped or ended.
- `listings_download.listings_download` — pages of listings, upserted and linked, with progress.
- `fba.stock.fba_inventory_sync`, `fba.outbound.fba_outbound_follow` — Amazon's fulfilment network.
- `connections` — a channel's connector, Test and Reauthorise.
- `runs.channel_run` — the run policy every flow uses: a SyncRun opened, finished with its counts, the channel
  flagged for reauthorisation when it refuses the credentials, the error re-raised.

Tasks (channels.tasks), commands and admin actions call these entries and nothing below them.
"""
