"""Amazon Selling Partner API (with FBA and multi-channel fulfilment)."""
