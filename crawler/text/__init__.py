"""A page's readable text (`pages.text`): `readable` extracts it (trafilatura, else the visible
text), `worker` runs that in a helper process, `pool` drives the helpers (time and memory
limits, replaced when they die).
"""
