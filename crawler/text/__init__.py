"""A page's readable text (`pages.text`): `readable` extracts it (resiliparse's plain text
without the page's navigation, else the visible text), `worker` runs that in a helper process,
`pool` drives the helper (time and memory limits, replaced when it dies).
"""
