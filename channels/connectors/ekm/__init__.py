"""EKM Partner API."""
