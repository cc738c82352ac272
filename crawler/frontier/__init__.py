"""Which URL goes out next, and who owns each host.

The scheduler keeps the hosts this run holds in a heap by the time each may be asked next, with
a window of each host's queued URLs read from the `urls` table; `hosts` and `leases` claim,
renew and give back hosts (one owner per host across processes); `politeness` paces each host
(delay, back-off, Retry-After, connections) on the injected `clock`; `skips` decides whether a
URL is crawled at all (scope, limits, robots.txt, traps).
"""
