"""Which URL goes out next, and who owns each host.

The scheduler keeps the hosts this run holds in a heap by the time each may be asked next, with
a window of each host's queued URLs read from the `urls` table; `hosts` owns every change to a
host's in-memory state (and says which coroutines touch it), and with `leases` claims, renews
and gives back hosts (one owner per host across processes); `politeness` paces each host
(delay, back-off, Retry-After, connections) on the injected `clock`; `robots_first` puts an
origin's robots.txt before its pages; `budget` counts pages against the crawl's max_pages;
`skips` decides whether a URL is crawled at all (scope, limits, robots.txt, traps). Nothing
here reads pages: the frontier imports neither `extract` nor `sitemaps`.
"""
