"""WooCommerce: the REST API wc/v3 on the seller's own WordPress shop."""
