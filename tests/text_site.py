"""A small site of known main text and boilerplate, for text, search and export tests.

Every page has the same navigation, header and footer around an article of its own. The
server keeps each body it sent (before any compression), by path, so tests can compare the
WARC's payloads with what was sent. Served by the test kit (`make_site`), which logs every request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from kit import HostPlan, make_site

HOST = "guide.test"
NAV_ITEMS = ("Birds index", "Mammals index", "Contact the editors")
FOOTER = "Copyright the Field Guide Society"
OWL_PHRASE = "the silent flight of the barn owl"

ARTICLES = {
    "/owls": (
        "Owls",
        [
            f"Owls hunt at night. Soft feathers give {OWL_PHRASE}, which mice never hear.",
            "An owl swallows its prey whole and later brings up pellets of fur and bone.",
        ],
    ),
    "/hawks": (
        "Hawks",
        [
            "Hawks hunt by day with sharp eyes, soaring on warm air over open fields.",
            "Unlike owls, a hawk flies with a rushing sound that small birds learn to fear.",
        ],
    ),
    "/herons": (
        "Herons",
        [
            "Herons stand still in shallow water for a long time, then strike at fish.",
            "A heron nests in colonies high in trees, called heronries, near lakes and rivers.",
        ],
    ),
    "/gzip": (
        "Compressed page",
        [
            "This page travels gzip-compressed. Kingfishers dive for minnows from a perch.",
            "The kingfisher's bright blue back flashes over streams in early spring light.",
        ],
    ),
    "/long": (
        "Long page",
        ["Swifts spend almost their whole lives in the air. " * 400],
    ),
}
NOINDEX = "/private-notes"
PLAIN = "/checklist.txt"


@dataclass
class TextSite:
    sent: dict[str, bytes] = field(default_factory=dict)  # path -> body as sent (decoded)


SENT = web.AppKey("text_sent", TextSite)


def page(title: str, paragraphs: list[str], extra_head: str = "") -> str:
    links = "".join(f'<li><a href="{path}">{name}</a></li>' for path, (name, _) in ARTICLES.items())
    nav = "".join(f'<li><a href="/">{item}</a></li>' for item in NAV_ITEMS)
    body = "".join(f"<p>{text}</p>" for text in paragraphs)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>{extra_head}"
        "<style>p { color: green }</style><script>var tracking = 'hidden';</script></head>"
        f"<body><header><nav><ul>{nav}</ul></nav></header>"
        f"<aside><ul>{links}<li><a href='{NOINDEX}'>Notes</a></li>"
        f"<li><a href='{PLAIN}'>Checklist</a></li></ul></aside>"
        f"<main><article><h1>{title}</h1>{body}</article></main>"
        f"<footer><p>{FOOTER}</p></footer></body></html>"
    )


def make_text_site() -> web.Application:
    """The site for any host (other paths: the kit's 404s); app[SENT] holds what it sent."""
    site = TextSite()

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/":
            text = page("Field guide", ["Welcome to the field guide of birds of prey and more."])
        elif path in ARTICLES:
            text = page(*ARTICLES[path])
        elif path == NOINDEX:
            text = page("Notes", ["Private notes."], '<meta name="robots" content="noindex">')
        else:  # PLAIN
            site.sent[path] = b"owl\nhawk\nheron\n"
            return web.Response(body=site.sent[path], content_type="text/plain")
        site.sent[path] = text.encode("utf-8")
        response = web.Response(body=site.sent[path], content_type="text/html", charset="utf-8")
        if path == "/gzip":
            response.enable_compression(web.ContentCoding.gzip)
        return response

    routes = dict.fromkeys(["/", *ARTICLES, NOINDEX, PLAIN], handle)
    plan = HostPlan(pages=0, robots="User-agent: *\nAllow: /\n", routes=routes)
    app = make_site({"*": plan})
    app[SENT] = site
    return app
