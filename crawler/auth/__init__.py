"""Credentials for your own sites: which hosts get them (`hosts`), what is sent and kept
(`credentials`: basic auth, headers, cookies, the login's session cookies, and what is
redacted before anything is written), the `[auth]` config section (`settings`), and the form
login's state (`login`: when a host's next turn goes to the login instead of a page).

Nothing here does I/O but reading the environment at start; the fetcher sends what
`Credentials` gives it, and the worker asks `LoginGate` before a page of the login host.
"""
