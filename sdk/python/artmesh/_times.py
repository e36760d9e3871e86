"""RFC 3339 times, as the API sends them, to aware datetimes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Optional

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


def parse_time(value: object) -> Optional[datetime]:
    """Parse an RFC 3339 time (``2025-01-02T03:04:05.123456789Z``) to an aware datetime.

    Fractions finer than a microsecond are cut (datetime holds no more);
    ``None`` or an empty string gives ``None``; anything else that is not an
    RFC 3339 time raises ValueError. (Python 3.10's ``fromisoformat`` reads
    neither ``Z`` nor nanoseconds, so the parse is done here.)
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    m = _RFC3339.match(value)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7) or ""
    micro = int((frac + "000000")[:6]) if frac else 0
    if m.group(8):
        tz = timezone.utc
    else:
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        tz = timezone(-offset if m.group(9) == "-" else offset)
    if second == 60:  # a leap second: datetime has none
        second = 59
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)


def require_time(value: object) -> datetime:
    """Like :func:`parse_time`, for a field that must be present."""
    t = parse_time(value)
    if t is None:
        raise ValueError("a required time is missing")
    return t
