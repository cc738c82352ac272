"""Moved to the test kit (tests/kit/site.py); these names stay for bench/ until it adopts it."""

from __future__ import annotations

from kit.site import SITE, HostPlan, Request, Site, make_site, max_in_flight, min_gap
from multidict import CIMultiDict, CIMultiDictProxy

make_site_app = make_site


class Hit(Request):
    """A kit.Request built as bench/ builds its hits: (host, path, start, end, user_agent)."""

    def __init__(self, host: str, path: str, start: float, end: float, user_agent: str) -> None:
        headers = CIMultiDictProxy(CIMultiDict({"User-Agent": user_agent}))
        super().__init__(host, path, "GET", headers, start, end)


__all__ = ["SITE", "Hit", "HostPlan", "Site", "make_site_app", "max_in_flight", "min_gap"]
