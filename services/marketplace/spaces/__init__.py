"""Learning spaces: listing, editing, search and availability."""
