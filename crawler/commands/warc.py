"""The WARC 1.1 export (SPEC "Export, text and search"), written with warcio.

Per page with a response, a `request` record (the request line and headers as sent) and a
`response` record (the status line and headers as received, then the body as stored), linked
by WARC-Concurrent-To, dated when the page was fetched. A `warcinfo` record comes first.

The stored body is the decoded one (aiohttp undoes gzip, deflate and br, and chunking), so the
headers are made to say so: Content-Encoding and Transfer-Encoding are kept under
`X-Archive-Orig-` names (pywb's convention for headers an archive rewrote), and Content-Length
is the stored body's. A body cut at fetch.max_bytes is marked `WARC-Truncated: length`.

Left out, and counted on stderr: pages with no response (a connection error has no record to
write), and pages whose body was not kept (a noindex page): a response record without its
payload would not be the exchange. Pages of a crawl made before the heads were kept get a
request line and a status line built from the row, and the Content-Type it recorded.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from http import HTTPStatus
from importlib.metadata import version
from typing import IO, Any

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter
from yarl import URL

WARC_COLUMNS = (
    "url", "status", "content_type", "body", "bytes", "truncated", "fetched_at",
    "request_head", "response_head",
)  # fmt: skip
_REWRITTEN = ("content-encoding", "transfer-encoding")  # untrue of the decoded body
_ORIGINAL = "X-Archive-Orig-"


def write_warc(rows: Iterable[tuple[Any, ...]], out: IO[bytes], source: str) -> int:
    """Write the pages `rows` (WARC_COLUMNS) to `out`; returns the pages written."""
    writer = WARCWriter(out, gzip=True, warc_version="1.1")
    info = {
        "software": f"crawler/{version('crawler')}",
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "description": f"pages of the crawl in {source}, bodies as stored (decoded)",
    }
    writer.write_record(writer.create_warcinfo_record(None, info))
    written = no_response = no_body = 0
    for row in rows:
        page = dict(zip(WARC_COLUMNS, row, strict=True))
        if page["status"] is None:
            no_response += 1
        elif page["body"] is None and page["bytes"]:
            no_body += 1
        else:
            request, response = _records(writer, page)
            writer.write_request_response_pair(request, response)
            written += 1
    if no_response or no_body:
        print(
            f"crawler: export: left out {no_response} pages without a response and {no_body}"
            " whose body was not stored (noindex)",
            file=sys.stderr,
        )
    return written


def _records(writer: WARCWriter, page: dict[str, Any]) -> tuple[Any, Any]:
    body: bytes = page["body"] or b""
    dated = {"WARC-Date": page["fetched_at"]}
    request = writer.create_warc_record(
        page["url"], "request", http_headers=_request_head(page), warc_headers_dict=dated
    )
    response_dict = dict(dated)
    if page["truncated"]:
        response_dict["WARC-Truncated"] = "length"
    response = writer.create_warc_record(
        page["url"], "response", payload=io.BytesIO(body), length=len(body),
        http_headers=_response_head(page, len(body)), warc_headers_dict=response_dict,
    )  # fmt: skip
    return request, response


def _request_head(page: dict[str, Any]) -> StatusAndHeaders:
    lines = _lines(page["request_head"])
    if not lines:
        url = URL(page["url"], encoded=True)
        lines = [f"GET {url.raw_path_qs} HTTP/1.1", f"Host: {url.raw_host}"]
    return StatusAndHeaders(lines[0], _fields(lines[1:]), is_http_request=True)


def _response_head(page: dict[str, Any], length: int) -> StatusAndHeaders:
    lines = _lines(page["response_head"])
    if not lines:
        lines = [f"HTTP/1.1 {page['status']} {_reason(page['status'])}".rstrip()]
        if page["content_type"]:
            lines.append(f"Content-Type: {page['content_type']}")
    protocol, _, status_line = lines[0].partition(" ")
    fields = []
    for name, value in _fields(lines[1:]):
        if name.lower() == "content-length":
            continue
        fields.append((_ORIGINAL + name if name.lower() in _REWRITTEN else name, value))
    fields.append(("Content-Length", str(length)))
    return StatusAndHeaders(status_line, fields, protocol=protocol)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _lines(head: str | None) -> list[str]:
    return head.split("\r\n") if head else []


def _fields(lines: list[str]) -> list[tuple[str, str]]:
    fields = []
    for line in lines:
        name, _, value = line.partition(":")
        fields.append((name.strip(), value.strip()))
    return fields
