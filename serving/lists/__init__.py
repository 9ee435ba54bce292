"""What the list endpoints (recommend, search, rank) share: protocol and service."""
