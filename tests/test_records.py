from __future__ import annotations

import random
from datetime import UTC, datetime

from crawler.records import utc_at


def test_utc_at_is_iso_8601_utc_with_milliseconds_as_datetime_writes_it() -> None:
    rng = random.Random(11)
    stamps = [rng.uniform(0, 4e9) for _ in range(20_000)] + [1.9999996, 0.0, 1_700_000_000.0005]
    for stamp in stamps:
        expected = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        assert utc_at(stamp) == expected, stamp
