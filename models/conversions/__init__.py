"""Conversions: the report's rules, the one service behind every face, its reads."""
