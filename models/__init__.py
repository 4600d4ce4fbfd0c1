"""Piccolo tables, migrations and the conversion service.

This package is the bottom layer: it imports nothing from `api`, `pixel` or `schema`.
"""
