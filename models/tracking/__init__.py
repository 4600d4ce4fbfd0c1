"""Offers, tracking links and the visits that turn into clicks."""
