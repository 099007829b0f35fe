"""Rakuten France web services (ex-PriceMinister)."""
