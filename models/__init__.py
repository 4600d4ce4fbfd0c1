"""The domain and its storage: one room per feature, and the storage room.

This package is the bottom layer: it imports nothing from `api`, `pixel` or `schema`.
Only `models/store/` speaks SQL or reaches into Piccolo's internals.
"""
