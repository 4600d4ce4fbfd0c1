"""The Litestar application: settings, wiring, lifespan and the command-line tool."""
