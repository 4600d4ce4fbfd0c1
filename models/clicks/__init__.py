"""Clicks: creating them (tracking links and createClick) and reading them."""
