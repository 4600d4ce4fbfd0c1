"""In-process CPU per recorded conversion, to see what the live feed's NOTIFY costs the
write path: `python bench/live_cost.py` against DATABASE_URL (a migrated store).

Records ROUNDS rounds of CONCURRENT installs on fresh clicks through the service (the
group commit batches each round) and prints this process's CPU time per conversion
and the wall time per round. Run it before and after a change on a quiet machine.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta

from piccolo.apps.migrations.commands.forwards import run_forwards

from models.clicks.service import NewClick, create_click
from models.conversions.input import RawConversion
from models.conversions.service import record_conversion
from models.store.engine import close_store, current_engine, open_store
from models.store.piccolo_app import APP_NAME
from models.store.tables import Source

ROUNDS = 40
CONCURRENT = 50
REPEATS = 5


async def _round(click_ids: list[str]) -> None:
    await asyncio.gather(
        *(
            record_conversion(RawConversion(click_id=id_, type="install"), source=Source.PIXEL)
            for id_ in click_ids
        )
    )


async def main() -> None:
    assert (await run_forwards(app_name=APP_NAME)).success
    engine = current_engine()
    await open_store(engine, pool_min_size=2, pool_max_size=4)
    try:
        created = datetime.now(UTC) - timedelta(hours=1)
        per_fire_us = []
        for _ in range(REPEATS):
            clicks = [
                str(await create_click(NewClick(created_at=created)))
                for _ in range(ROUNDS * CONCURRENT)
            ]
            cpu, wall = time.process_time(), time.perf_counter()
            for start in range(0, len(clicks), CONCURRENT):
                await _round(clicks[start : start + CONCURRENT])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            per_fire_us.append(cpu / len(clicks) * 1e6)
            print(
                f"{engine.engine_type}: {cpu / len(clicks) * 1e6:.1f} µs CPU per conversion, "
                f"{wall / ROUNDS * 1e3:.2f} ms per round of {CONCURRENT}"
            )
        print(f"median {statistics.median(per_fire_us):.1f} µs CPU per conversion")
    finally:
        await close_store(engine)


if __name__ == "__main__":
    asyncio.run(main())
