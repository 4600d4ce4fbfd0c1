"""`conversions import FILE.csv`, run as a user runs it: the real command in a subprocess,
on the engine DATABASE_URL names."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from piccolo.engine.base import Engine

from models.store.engine import is_postgres
from models.store.tables import Click, Conversion
from tests.support import new_click
from tests.test_cli import CONVERSIONS

DOCS = Path(__file__).resolve().parent.parent / "docs" / "lifecycle.md"
HEADER = "click_id,type,player_id,amount,currency,transaction_id"


@dataclass(frozen=True)
class Run:
    status: int
    stdout: str
    stderr: str

    def count(self, outcome: str) -> int:
        """The summary's count of an outcome."""
        match = re.search(rf"^  {outcome} +([\d,]+)$", self.stdout, re.MULTILINE)
        assert match, self.stdout
        return int(match[1].replace(",", ""))


def run_import(*arguments: str | Path, database_url: str | None = None) -> Run:
    # stdin, stdout and stderr are pipes: not a terminal.
    result = subprocess.run(
        [CONVERSIONS, "import", *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ | ({"DATABASE_URL": database_url} if database_url else {}),
    )
    return Run(result.returncode, result.stdout, result.stderr)


def rejects_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _fences(label: str) -> list[str]:
    return re.findall(rf"^```{label}\n(.*?)^```$", DOCS.read_text(), re.MULTILINE | re.DOTALL)


async def test_the_documented_example_imports_as_documented(db: Engine, tmp_path: Path) -> None:
    example, documented_rejects = _fences("csv")
    created = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    # The example's clicks, created before the example's times.
    clicks = dict.fromkeys(re.findall(r"^([0-9a-f-]{36}),", example, re.MULTILINE))
    for click_id in list(clicks)[:2]:
        await Click.insert(Click(id=uuid.UUID(click_id), created_at=created))
    source = write(tmp_path / "conversions.csv", example)

    run = run_import(source)

    assert run.status == 1, run
    counts = {"recorded": 3, "repeat": 1, "invalid": 1, "not found": 1, "conflict": 1}
    for outcome, count in counts.items():
        assert run.count(outcome) == count
    assert run.count("unreadable") == run.count("store unavailable") == 0
    assert "3 rows rejected: see" in run.stdout
    rejects = (tmp_path / "conversions.rejects.csv").read_bytes().decode()
    assert rejects == documented_rejects.replace("\n", "\r\n")
    stored = await Conversion.select(Conversion.type, Conversion.source, Conversion.amount_minor)
    assert sorted((row["type"], row["source"], row["amount_minor"]) for row in stored) == [
        ("deposit", "import", 4000),
        ("install", "import", None),
        ("install", "import", None),
    ]
    # The documented time, with its offset, stored as UTC.
    deposit = await Conversion.select(Conversion.occurred_at).where(Conversion.type == "deposit")
    assert deposit[0]["occurred_at"] == datetime(2026, 11, 25, 10, 30, tzinfo=UTC)


async def test_running_it_again_makes_repeats(db: Engine, tmp_path: Path) -> None:
    click_id = await new_click()
    source = write(
        tmp_path / "in.csv",
        f"click_id,type,amount,currency,transaction_id\n{click_id},install,,,\n"
        f"{click_id},deposit,40.00,eur,t-1\n{click_id},deposit,5,usd,t-2\n",
    )
    first = run_import(source)
    assert first.status == 0, first
    assert first.count("recorded") == 3
    assert "no rows rejected" in first.stdout

    again = run_import(source)
    assert again.status == 0, again
    assert (again.count("recorded"), again.count("repeat")) == (0, 3)
    assert await Conversion.count() == 3
    # Only a header: the file tells of this run's rejects, and there were none.
    assert rejects_of(tmp_path / "in.rejects.csv") == []


@pytest.mark.parametrize(
    ("header", "complaint"),
    [
        ("type,amount", "lacks click_id"),
        ("click_id,amount", "lacks type"),
        ("amount,currency", "lacks click_id and type"),
        ("click_id,type,Type", "names type more than once"),
        ("", "is empty"),
    ],
)
async def test_a_header_without_its_columns_exits_2_and_stores_nothing(
    db: Engine, tmp_path: Path, header: str, complaint: str
) -> None:
    click_id = await new_click()
    body = f"{header}\n{click_id},install\n" if header else ""
    run = run_import(write(tmp_path / "in.csv", body))
    assert run.status == 2, run
    assert complaint in run.stderr
    assert "nothing was stored" in run.stderr
    assert await Conversion.count() == 0
    assert not (tmp_path / "in.rejects.csv").exists()


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    run = run_import(tmp_path / "nowhere.csv")
    assert run.status == 2
    assert "nowhere.csv" in run.stderr


async def test_unreadable_lines_are_rejected_with_their_line_numbers(
    db: Engine, tmp_path: Path
) -> None:
    clicks = [await new_click() for _ in range(5)]
    lines = [
        b"click_id,type,player_id",
        f"{clicks[0]},install,p-1".encode(),
        f"{clicks[1]},install,caf\xc3\xa9-\xff".encode("latin-1"),  # invalid UTF-8
        f"{clicks[2]},install".encode(),  # a field short
        f'{clicks[2]},install,"unclosed'.encode(),
        f"{clicks[3]},install,{'x' * (64 * 1024)}".encode(),  # over 64 KiB
        b"",  # blank: skipped, but counted as a line
        f"{clicks[4]},install,".encode(),
        f"{clicks[4]},registration,p-\u00e9".encode(),
    ]
    source = write(tmp_path / "in.csv", b"\r\n".join(lines) + b"\r\n")

    run = run_import(source, "--rejects", tmp_path / "why.csv")

    assert run.status == 1, run
    assert (run.count("recorded"), run.count("unreadable")) == (3, 4)
    rejects = rejects_of(tmp_path / "why.csv")
    assert [(row["line"], row["outcome"]) for row in rejects] == [
        ("3", "unreadable"),
        ("4", "unreadable"),
        ("5", "unreadable"),
        ("6", "unreadable"),
    ]
    assert rejects[0]["errors"].startswith("[invalid_utf8] ")
    bad_byte = lines[2].index(b"\xff") + 1
    assert f"(byte {bad_byte})" in rejects[0]["errors"]
    assert rejects[1]["errors"] == (
        "[wrong_field_count] the line has 2 fields where the header names 3"
    )
    assert rejects[2]["errors"].startswith("[malformed_csv] ")
    assert rejects[3]["errors"] == "[too_long] the line is over 64 KiB"
    assert not (tmp_path / "in.rejects.csv").exists()
    players = await Click.select(Click.player_id).where(Click.id.is_in([clicks[0], clicks[4]]))
    assert sorted(row["player_id"] for row in players) == ["p-1", "p-\u00e9"]


async def test_a_10_mb_line_is_read_in_bounded_pieces(db: Engine, tmp_path: Path) -> None:
    """A line of 10 MB (and one of 100 MB) costs the command no more memory than a
    short file: its peak resident memory grows by less than the line."""
    click_id = await new_click()
    small = write(tmp_path / "small.csv", f"{HEADER}\n{click_id},install,,,,\n")
    peak_small = _peak_memory_mib(small)
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as file:
        file.write(f"{HEADER}\n".encode())
        for megabytes in (10, 100):
            file.write(f"{click_id},deposit,".encode())
            for _ in range(megabytes):
                file.write(b"p" * 2**20)
            file.write(b",,,\n")
        file.write(f"{click_id},registration,,,,\n".encode())
    peak_huge = _peak_memory_mib(huge)
    assert peak_huge < peak_small + 20, (peak_small, peak_huge)
    rejects = rejects_of(tmp_path / "huge.rejects.csv")
    assert [(row["line"], row["errors"]) for row in rejects] == [
        ("2", "[too_long] the line is over 64 KiB"),
        ("3", "[too_long] the line is over 64 KiB"),
    ]
    assert await Conversion.count() == 2


# Starts the command from a small process and prints its peak resident memory in KiB.
# Started straight from pytest, the command would count pytest's own pages as its peak:
# Linux keeps the peak of the process image an exec replaced.
PEAK_MEMORY = """
import os, subprocess, sys
with subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as child:
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
print(usage.ru_maxrss)
"""


def _peak_memory_mib(source: Path) -> int:
    command = [sys.executable, "-c", PEAK_MEMORY, CONVERSIONS, "import", str(source)]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    return int(result.stdout) // 1024


async def test_dry_run_stores_nothing_and_checks_every_row(db: Engine, tmp_path: Path) -> None:
    click_id = await new_click()
    repeated = await new_click()
    await run_import_of(tmp_path, f"{repeated},install,,,,")
    before = await Conversion.count()
    source = write(
        tmp_path / "in.csv",
        f"{HEADER}\n{click_id},install,p-1,,,\n{repeated},install,,,,\n"
        f"{uuid.uuid4()},install,,,,\n{click_id},deposit,,1e3,eur,t\n",
    )

    run = run_import(source, "--dry-run")

    assert run.status == 1, run
    assert "dry run: nothing was stored" in run.stdout
    assert (run.count("recorded"), run.count("repeat")) == (1, 1)
    assert (run.count("not found"), run.count("invalid")) == (1, 1)
    assert await Conversion.count() == before
    assert (await Click.select(Click.player_id, Click.stage).where(Click.id == click_id)) == [
        {"player_id": None, "stage": 0}
    ]
    assert [row["line"] for row in rejects_of(tmp_path / "in.rejects.csv")] == ["4", "5"]


async def run_import_of(directory: Path, *rows: str) -> Run:
    """Import `rows` under HEADER from a file of their own."""
    path = directory / f"{uuid.uuid4().hex}.csv"
    return await asyncio.to_thread(run_import, write(path, "\n".join([HEADER, *rows]) + "\n"))


async def test_missing_columns_are_empty_and_unknown_ones_ignored(
    db: Engine, tmp_path: Path
) -> None:
    click_id = await new_click()
    source = write(tmp_path / "in.csv", f"Type,Click_ID,campaign\nDEPOSIT,{click_id},spring\n")
    run = run_import(source)
    assert run.status == 0, run
    assert "ignored columns: campaign" in run.stdout
    [stored] = await Conversion.select(Conversion.type, Conversion.amount_minor, Conversion.source)
    assert stored == {"type": "deposit", "amount_minor": None, "source": "import"}
    assert "1 deposits without a transaction_id were recorded" in run.stdout


async def test_progress_is_plain_lines_when_not_on_a_terminal(db: Engine, tmp_path: Path) -> None:
    clicks = [await new_click() for _ in range(20)]
    rows = [f"{click_id},{step},,,," for click_id in clicks for step in ("install", "registration")]
    run = await run_import_of(tmp_path, *rows)
    assert run.status == 0, run
    progress = [line for line in run.stderr.splitlines() if " read, line " in line]
    assert progress, run.stderr
    assert re.search(
        r"100% read, line 41, 40 rows, [\d,]+ rows/s, about 0 s left$", progress[-1]
    ), progress
    assert "\x1b[" not in run.stderr  # no terminal control sequences


async def test_an_interrupted_import_finishes_when_run_again(db: Engine, tmp_path: Path) -> None:
    clicks = await asyncio.gather(*(new_click() for _ in range(3_000)))
    rows = [
        f"{click_id},{step},,{amount},{currency},{transaction_id}"
        for number, click_id in enumerate(clicks)
        for step, amount, currency, transaction_id in (
            ("install", "", "", ""),
            ("registration", "", "", ""),
            ("deposit", "10", "eur", f"t-{number}"),
        )
    ]
    source = write(tmp_path / "in.csv", "\n".join([HEADER, *rows]) + "\n")
    status, stderr = await asyncio.to_thread(_interrupted, source)
    assert status == 130, stderr
    assert "interrupted after line" in stderr
    interrupted_at = await Conversion.count()
    assert 0 < interrupted_at < 9_000

    again = await asyncio.to_thread(run_import, source)
    assert again.status == 0, again
    assert (again.count("repeat"), again.count("recorded")) == (
        interrupted_at,
        9_000 - interrupted_at,
    )
    assert await Conversion.count() == 9_000


def _interrupted(source: Path) -> tuple[int, str]:
    """Import `source`, pressing Ctrl-C at 30% of the file: the exit status and stderr."""
    with subprocess.Popen(
        [CONVERSIONS, "import", str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stderr is not None
        # Well past the first rows' commits: reading runs ahead of them by one window.
        for _ in range(3):
            progress = process.stderr.readline()
        assert "30% read" in progress, progress
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    return process.returncode, progress + stderr


async def test_a_store_that_is_down_imports_nothing(db: Engine, tmp_path: Path) -> None:
    click_id = await new_click()
    source = write(tmp_path / "in.csv", f"{HEADER}\n{click_id},install,,,,\n")
    if is_postgres(db):
        unreachable = "postgresql://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1
    else:
        unreachable = f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}"
    run = run_import(source, database_url=unreachable)
    assert run.status == 2, run
    assert "the store is unavailable" in run.stderr
    assert "nothing was stored" in run.stderr
    assert "Traceback" not in run.stderr
