"""Reports for dashboards: the live feed of conversions (live.py)."""
