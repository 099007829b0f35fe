"""Shopify: the GraphQL Admin API 2026-04."""
