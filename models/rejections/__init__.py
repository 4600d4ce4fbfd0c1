"""Rejected fires: the pixel's 401, 404, 409 and 422 answers, kept for a while so an
integrator can see why a fire failed (docs/lifecycle.md)."""
