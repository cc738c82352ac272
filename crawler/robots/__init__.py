"""robots.txt: `rules` parses a file (RFC 9309) into rules that are cheap to match; `origins`
follows each origin's file through its life (fetch, redirects, retries, TTL, restore from the
database).
"""
