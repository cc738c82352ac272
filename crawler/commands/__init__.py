"""The read-side commands: `query`, `stats`, `search`, `export` (with `warc`). They read through
storage's read interface and never talk to a database driver themselves.
"""
