"""A certificate authority of the test's own, and an https site's server context signed by it."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from pathlib import Path

import trustme


@contextlib.contextmanager
def trusted_ca(folder: Path, host: str) -> Iterator[tuple[Path, ssl.SSLContext]]:
    """A CA's certificate written to `folder`/ca.pem, and a server context with a certificate
    for `host` signed by it."""
    ca = trustme.CA()
    pem = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(context)
    yield pem, context
