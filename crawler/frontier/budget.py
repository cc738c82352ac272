"""The crawl's page budget (`crawl.max_pages`), shared by every run of the crawl: storage grants
it a few pages at a time (storage contract, rule 11), and a run spends its grant page by page.

A reservation is a database round trip (on PostgreSQL, over the network): the frontier reserves
before it reads a host's queue, never between reading and taking (see `hosts`), and a page
taken but not requested after all goes back to the run's grant.
"""

from __future__ import annotations

from ..storage import Storage

PAGES_PER_RESERVATION = 8  # pages of max_pages reserved from storage at a time


class PageBudget:
    """This run's share of max_pages (0: no limit): pages reserved and not spent yet."""

    def __init__(self, store: Storage, max_pages: int) -> None:
        self._store = store
        self._max_pages = max_pages
        self._reserved = 0

    def available(self) -> bool:
        """A page can be spent now, without asking storage."""
        return not self._max_pages or self._reserved > 0

    async def reserve(self) -> bool:
        """Ask storage for more pages; False when the crawl's budget is spent."""
        granted = await self._store.reserve_pages(PAGES_PER_RESERVATION, self._max_pages)
        self._reserved += granted
        return granted > 0

    def spend(self) -> None:
        """One page goes out (`available` said there was one)."""
        if self._max_pages:
            assert self._reserved > 0, "a page spent without a reservation"
            self._reserved -= 1

    def give_back(self) -> None:
        """A page spent was not requested after all (or will be requested again)."""
        if self._max_pages:
            self._reserved += 1
