"""Generated sites for the performance benchmark (issue 6), the same files for the same seed.

    .venv/bin/python bench/gensite.py multihost DIR [--hosts 64] [--pages 300] [--port 8481]
    .venv/bin/python bench/gensite.py million DIR [--fanout 300] [--pages 4000] [--port 8481]

Each host's files go to DIR/<host>/, so one nginx server block with `listen PORT;` and
`root DIR/$server_addr;` serves every host on its own loopback address. Links between hosts
are absolute and carry PORT (written into the files), so nginx must listen on `Site.port`.

- multihost: hosts 127.0.1.1 … 127.0.1.N, each a documentation site of `pages` HTML pages
  (index.html, /docs/<section>/index.html, /docs/<section>/<slug>.html) of 5 to 15 KB and about
  30 links each: same-host links written relative, `./`, `../`, root-relative and absolute;
  cross-host links; out-of-scope links (example.com, mailto:, javascript:, ...); fragments;
  percent-encoded spellings of unreserved characters; rel=nofollow; folders without their slash
  (nginx answers 301); links into /private/, which robots.txt disallows; links to missing files
  (404); and on each index page `/assets/` (a folder without index.html: 403) and an <area>.
  Page i links to page i+1, so the seed http://HOST:PORT/ reaches every page of its host.
- million: host 127.0.2.1; /index.html links to /p/0.html and /p/<i>.html links to /p/<j>.html
  for j in fanout*i+1 … fanout*i+fanout. Only `pages` of those files exist (the others are
  404), so the frontier grows to about pages*fanout URLs.
"""

from __future__ import annotations

import argparse
import html
import posixpath
import random
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 8481
SECTIONS = ("guide", "tutorial", "reference", "api", "howto", "faq", "internals", "releases")
PRIVATE_PAGES = 4  # /private/notes-<k>.html, besides /private/index.html
LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris "
    "nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse "
    "cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui "
    "officia deserunt mollit anim id est laborum"
)
WORDS = tuple(LOREM.split())
OUT_OF_SCOPE = (
    "http://example.com/",
    "https://www.example.org/docs/intro.html",
    "http://example.com/search?q=crawler&lang=en",
    "mailto:webmaster@example.com",
    "javascript:void(0)",
    "ftp://ftp.example.net/pub/",
    "tel:+15550100",
)
ROBOTS = "User-agent: *\nDisallow: /private/\n"
STYLE = "body { font: 16px/1.5 sans-serif; margin: 0 auto; max-width: 50em; }\n"
SCRIPT = "document.documentElement.classList.add('js');\n"


@dataclass(frozen=True)
class Site:
    """A generated site: root/<host>/ holds each host's files, served on `port`."""

    root: Path
    hosts: list[str]
    port: int = DEFAULT_PORT

    def seeds(self) -> list[str]:
        """One seed per host: its index page."""
        return [f"http://{host}:{self.port}/" for host in self.hosts]

    def root_of(self, host: str, port: int) -> Path | None:
        """The document root nginx uses for host:port, None where nothing listens (for
        `truth.ground_truth`)."""
        return self.root / host if port == self.port and host in self.hosts else None


@dataclass(frozen=True, slots=True)
class Link:
    href: str
    text: str
    rel: str = ""


@dataclass(frozen=True, slots=True)
class HostPlan:
    """One host of the multi-host site: its name, origin and page paths (no leading slash)."""

    host: str
    origin: str
    paths: list[str]


# ------------------------------------------------------------------------------ HTML and text


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(6, 16))).capitalize() + "."


class Lorem:
    """Seeded filler text. Paragraphs are runs of a pool of sentences: drawing every word
    anew made writing the 64-host site three times slower."""

    def __init__(self, rng: random.Random, sentences: int = 500) -> None:
        self.rng = rng
        self.pool = [sentence(rng) for _ in range(sentences)]

    def heading(self) -> str:
        return self.rng.choice(self.pool)[:-1]

    def paragraph(self, links: list[Link]) -> str:
        """4 to 9 sentences with `links` set in at random places."""
        start, count = self.rng.randrange(len(self.pool)), self.rng.randint(4, 9)
        run = (self.pool[(start + k) % len(self.pool)] for k in range(count))
        words = " ".join(run).split(" ")
        for link in links:
            words.insert(self.rng.randrange(len(words) + 1), anchor(link))
        return f"<p>{' '.join(words)}</p>"


def anchor(link: Link) -> str:
    rel = f' rel="{link.rel}"' if link.rel else ""
    return f'<a href="{html.escape(link.href)}"{rel}>{html.escape(link.text)}</a>'


def title_of(path: str) -> str:
    name = posixpath.basename(path).removesuffix(".html")
    folder = posixpath.basename(posixpath.dirname(path))
    return (folder if name == "index" else name.rsplit("-", 1)[0].replace("-", " ")).title()


def render(lorem: Lorem, host: str, title: str, body: list[Link], extra: str = "") -> str:
    """A whole page: head, header, nav, sections of paragraphs carrying `body`, footer."""
    parts = lorem.rng.randint(2, 4)
    sections = []
    for k in range(parts):
        links, count = body[k::parts], lorem.rng.randint(2, 5)
        paragraphs = "\n".join(lorem.paragraph(links[j::count]) for j in range(count))
        heading = lorem.heading()
        sections.append(f'<section id="sec{k + 1}">\n<h2>{heading}</h2>\n{paragraphs}\n</section>')
    content = "\n".join(sections)
    nav = "".join(f'<li><a href="/docs/{s}/">{s.title()}</a></li>' for s in SECTIONS)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="index, follow">
<title>{html.escape(title)} | Docs of {host}</title>
<link rel="stylesheet" href="/assets/style.css">
<script src="/assets/site.js" defer></script>
</head>
<body>
<header id="top"><a href="/" class="logo">Docs of {host}</a></header>
<nav><ul>{nav}</ul></nav>
<main>
<h1>{html.escape(title)}</h1>
{extra}{content}
</main>
<footer><p><a href="#top">Back to top</a> · <a href="mailto:docs@example.com">Contact</a> ·
<a href="http://example.com/privacy">Privacy</a> · <a href="/">Home</a></p></footer>
</body>
</html>
"""


# -------------------------------------------------------------------------------- link shapes


def plan_paths(rng: random.Random, pages: int) -> list[str]:
    """index.html, one index per section, then content pages spread over the sections."""
    paths = ["index.html"] + [f"docs/{section}/index.html" for section in SECTIONS]
    for n in range(len(paths), pages):
        slug = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{n}"
        paths.append(f"docs/{rng.choice(SECTIONS)}/{slug}.html")
    return paths


def relative_path(src: str, dst: str) -> str:
    """`dst` relative to the folder of `src` (posixpath.relpath, without its cost)."""
    folder, target = src.split("/")[:-1], dst.split("/")
    common = 0
    while common < min(len(folder), len(target) - 1) and folder[common] == target[common]:
        common += 1
    return "../" * (len(folder) - common) + "/".join(target[common:])


def same_host_href(rng: random.Random, origin: str, src: str, dst: str) -> str:
    """A link from page `src` to page `dst` of one host, in one of the ways sites write them."""
    relative = relative_path(src, dst)
    shape = rng.random()
    if shape < 0.35:
        return relative
    if shape < 0.45 and not relative.startswith("../"):
        return "./" + relative
    if shape < 0.55:
        return "../" * src.count("/") + dst  # up to the root, then down again
    if shape < 0.85:
        return "/" + dst
    return f"{origin}/{dst}"


def percent_encoded(rng: random.Random, path: str) -> str:
    """A root-relative spelling of `path` with one character percent-encoded (all the
    characters of our paths are unreserved, so it normalizes back to `/path`)."""
    spots = [i for i, char in enumerate(path) if char != "/"]
    i = rng.choice(spots)
    code = f"%{ord(path[i]):02X}" if rng.random() < 0.5 else f"%{ord(path[i]):02x}"
    return "/" + path[:i] + code + path[i + 1 :]


def odd_links(rng: random.Random, src: str) -> list[Link]:
    """Now and then: a folder without its slash (301), /private/ (robots), a missing file (404),
    a nofollow link."""
    up = "../" * src.count("/")
    links = []
    if rng.random() < 0.3:
        section = rng.choice(SECTIONS)
        href = f"/docs/{section}" if rng.random() < 0.5 else f"{up}docs/{section}"
        links.append(Link(href, f"all of {section}"))
    if rng.random() < 0.2:
        k = rng.randint(1, PRIVATE_PAGES)
        href = rng.choice(("/private/", f"/private/notes-{k}.html", f"{up}private/notes-{k}.html"))
        links.append(Link(href, "internal notes"))
    if rng.random() < 0.15:
        gone = f"{rng.choice(WORDS)}-{rng.randint(1, 999)}.html"
        href = rng.choice((f"/docs/{rng.choice(SECTIONS)}/{gone}", gone, "/archive/2019/"))
        links.append(Link(href, "old version"))
    if rng.random() < 0.2:
        links.append(Link("/docs/faq/index.html", "sponsored", rel="sponsored nofollow"))
    return links


def page_links(rng: random.Random, plans: list[HostPlan], me: int, i: int) -> list[Link]:
    """The links of page i of host plans[me], nav and footer aside (about 20 of them)."""
    plan = plans[me]
    src = plan.paths[i]

    def to(dst: str, text: str) -> Link:
        return Link(same_host_href(rng, plan.origin, src, dst), text)

    links = [to(plan.paths[(i + 1) % len(plan.paths)], "next")]
    if i > 0:
        links.append(to(plan.paths[i - 1], "previous"))
    links += [to(dst, title_of(dst).lower()) for dst in rng.sample(plan.paths, 11)]
    others = [p for k, p in enumerate(plans) if k != me]
    for other in rng.sample(others, min(3, len(others))):
        dst = rng.choice(other.paths)
        links.append(Link(f"{other.origin}/{dst.removesuffix('index.html')}", other.host))
    links += [Link(href, "elsewhere") for href in rng.sample(OUT_OF_SCOPE, 2)]
    dst = rng.choice(plan.paths)
    fragment = same_host_href(rng, plan.origin, src, dst) + f"#sec{rng.randint(1, 3)}"
    links += [Link(fragment, "see below"), Link(percent_encoded(rng, dst), "same page")]
    links += odd_links(rng, src)
    rng.shuffle(links)
    return links


# ---------------------------------------------------------------------------- multi-host site


def write_multihost(
    root: Path, hosts: int = 64, pages: int = 300, seed: int = 2026, port: int = DEFAULT_PORT
) -> Site:
    """Write the multi-host documentation site under `root` (see the module docstring)."""
    if pages <= len(SECTIONS):
        raise ValueError(f"pages must be more than {len(SECTIONS)}, not {pages!r}")
    names = [f"127.0.1.{n}" for n in range(1, hosts + 1)]
    plans = [
        HostPlan(host, f"http://{host}:{port}", plan_paths(random.Random(f"{seed}:{host}"), pages))
        for host in names
    ]
    for me, plan in enumerate(plans):
        write_host(root / plan.host, plans, me, random.Random(f"{seed}:{plan.host}:pages"))
    return Site(root, names, port)


def write_host(folder: Path, plans: list[HostPlan], me: int, rng: random.Random) -> None:
    plan = plans[me]
    for path in ("assets", "private", *(f"docs/{section}" for section in SECTIONS)):
        (folder / path).mkdir(parents=True, exist_ok=True)
    (folder / "robots.txt").write_text(ROBOTS)
    (folder / "assets" / "style.css").write_text(STYLE)
    (folder / "assets" / "site.js").write_text(SCRIPT)
    lorem = Lorem(rng)
    for i, path in enumerate(plan.paths):
        body = page_links(rng, plans, me, i)
        extra = index_extras() if i == 0 else ""
        page = render(lorem, plan.host, title_of(path), body, extra)
        (folder / path).write_text(page, encoding="utf-8")
    write_private(folder / "private", plan.host, lorem)


def index_extras() -> str:
    """On each index page: a folder without index.html (403), /private without its slash (301,
    then robots), and an image map's <area>."""
    return """<p>Browse the <a href="/assets/">assets</a> or the <a href="/private">staff area</a>.
<map name="sections"><area shape="rect" coords="0,0,80,40" href="/docs/faq/" alt="FAQ"></map></p>
"""


def write_private(folder: Path, host: str, lorem: Lorem) -> None:
    """/private/: disallowed by robots.txt, but there, and linked from some pages."""
    names = ["index.html"] + [f"notes-{k}.html" for k in range(1, PRIVATE_PAGES + 1)]
    for name in names:
        links = [Link(other, "notes") for other in names if other != name]
        links += [Link("/", "home"), Link("../docs/guide/", "guide")]
        page = render(lorem, host, f"Private {name.removesuffix('.html')}", links)
        (folder / name).write_text(page, encoding="utf-8")


# ---------------------------------------------------------------------------- million-URL site


def write_million(
    root: Path, fanout: int = 300, pages: int = 4000, seed: int = 2026, port: int = DEFAULT_PORT
) -> Site:
    """Write the frontier-growth site under `root` (see the module docstring). Nothing in it is
    random: `seed` is there for symmetry with `write_multihost`."""
    del seed
    host = "127.0.2.1"
    folder = root / host / "p"
    folder.mkdir(parents=True, exist_ok=True)
    (root / host / "robots.txt").write_text("User-agent: *\nDisallow:\n")
    (root / host / "index.html").write_text(minimal_page("Start", ['<a href="/p/0.html">0</a>']))
    for i in range(pages):
        first = fanout * i + 1
        links = [f'<li><a href="/p/{j}.html">{j}</a>' for j in range(first, first + fanout)]
        (folder / f"{i}.html").write_text(minimal_page(f"Page {i}", links))
    return Site(root, [host], port)


def minimal_page(title: str, items: list[str]) -> str:
    head = f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
    lines = "\n".join(items)
    return f"{head}<body><ul>\n{lines}\n</ul></body></html>\n"


# ------------------------------------------------------------------------------------- command


def summarize(site: Site) -> str:
    """Pages, bytes and links (<a> and <area> tags) of the HTML files under the site's root."""
    pages = size = links = 0
    for host in site.hosts:
        for path in (site.root / host).rglob("*.html"):
            data = path.read_bytes()
            pages, size = pages + 1, size + len(data)
            links += data.count(b"<a ") + data.count(b"<area ")
    return (
        f"{len(site.hosts)} hosts, {pages} pages, {size / 1e6:.1f} MB, "
        f"{links} links ({links / max(pages, 1):.1f} a page), port {site.port}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("multihost", "million"))
    parser.add_argument("dir", type=Path)
    parser.add_argument("--hosts", type=int, default=64, help="multihost: number of hosts")
    parser.add_argument("--fanout", type=int, default=300, help="million: links a page")
    parser.add_argument("--pages", type=int, help="pages a host (300) or page files (4000)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args()
    start = time.perf_counter()
    if args.kind == "multihost":
        site = write_multihost(args.dir, args.hosts, args.pages or 300, args.seed, args.port)
    else:
        site = write_million(args.dir, args.fanout, args.pages or 4000, args.seed, args.port)
    took = time.perf_counter() - start
    print(f"{args.kind} in {args.dir}: {summarize(site)}; written in {took:.1f} s")


if __name__ == "__main__":
    main()
