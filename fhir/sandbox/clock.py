"""Sandbox time: a fixed "today", US time zones with daylight saving, FHIR date-time strings.

The generator never reads the system clock: every date derives from ``TODAY``, so the same
arguments give the same bytes whenever they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

TODAY = date(2025, 6, 30)
NOW = datetime(2025, 6, 30, 12, 0)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Zone:
    """A US time zone: its standard offset in hours and whether it keeps daylight saving time."""

    standard: int
    dst: bool

    def offset(self, local: datetime) -> str:
        """Return the ``±hh:mm`` UTC offset in force at ``local`` wall-clock time."""
        hours = self.standard + 1 if self.dst and _in_dst(local) else self.standard
        return f"{'-' if hours < 0 else '+'}{abs(hours):02d}:00"

    def stamp(self, local: datetime) -> str:
        """Format a FHIR ``dateTime``/``instant`` (seconds, with offset) for a wall-clock time."""
        return local.isoformat(timespec="seconds") + self.offset(local)


EASTERN = Zone(-5, True)
CENTRAL = Zone(-6, True)
ARIZONA = Zone(-7, False)
PACIFIC = Zone(-8, True)


@lru_cache(maxsize=256)
def _dst_bounds(year: int) -> tuple[datetime, datetime]:
    """US rule since 2007: 02:00 on the second Sunday of March to 02:00 on the first Sunday of November."""
    march = date(year, 3, 8)
    november = date(year, 11, 1)
    start = march + timedelta(days=(6 - march.weekday()) % 7)
    end = november + timedelta(days=(6 - november.weekday()) % 7)
    return datetime(start.year, start.month, start.day, 2), datetime(end.year, end.month, end.day, 2)


def _in_dst(local: datetime) -> bool:
    start, end = _dst_bounds(local.year)
    return start <= local < end


def years_between(earlier: date, later: date) -> float:
    """Age-style difference in fractional years."""
    return (later - earlier).days / 365.25


def partial_date(day: date, precision: int) -> str:
    """A FHIR ``date``/``dateTime`` to year (1), month (2) or day (3) precision."""
    text = day.isoformat()
    return text[: (4, 7, 10)[precision - 1]]
