"""POST /v1/events: record shopper events; the next request of that shopper sees them."""
