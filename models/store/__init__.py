"""The storage room: tables, migrations, engines, batch SQL and the group commit.

The only code that speaks SQL or reaches into Piccolo's internals. The Piccolo app
keeps the name "models", so the stored migration history still matches.
"""
