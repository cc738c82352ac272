"""A page's readable text (`pages.text`): `readable` extracts it (resiliparse's main content,
else the visible text), `worker` runs that in a helper process, `pool` drives the helpers (time
and memory limits, replaced when they die).
"""
