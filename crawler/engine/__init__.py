"""The crawl itself: `crawl` runs the `workers` (take a task, fetch, hand on), the one
extraction task and the `writer` in one TaskGroup; `progress` is the live line, `lag` samples
the event loop, `processes` starts `crawl --processes N`.
"""
