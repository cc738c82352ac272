"""The read-side commands: `query`, `stats`, `search`, `export` (with `warc`), `report` (with
`report_html` and `report_charts`) and `serve` (with `live_view`, `live_page`, `metrics`).
They read through storage's read interface (`storage.open_reader`) and never talk to a database
driver themselves; what they print or serve is made from what it returns.
"""
