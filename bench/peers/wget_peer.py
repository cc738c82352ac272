"""GNU wget as a peer: a recursive crawl of the job's seeds, one connection at a time.

    python bench/peers/wget_peer.py JOB           # becomes wget (os.execv)
    python bench/peers/wget_peer.py JOB --print   # prints wget's argv as JSON, runs nothing

JOB is the peers' JSON job file (`seeds`, `allowed_hosts`, `obey_robots`, `out`, `user_agent`;
`concurrency` and `urls_file` do not apply). The script builds wget's command line and replaces
itself with wget, so the process the harness measures (wall, rusage) *is* wget, plus Python's
start-up before the exec: 40-70 ms of CPU, and a peak RSS of 11.5 MB where wget alone peaks at
about 5 MB (Linux keeps the larger maximum across exec). To measure wget alone, run the argv that
`--print` gives (or `wget_argv(job)`) directly. Pages are saved under `out/wget/HOST:PORT/`.

wget's exit status is 8 whenever any response was an error status (a 404 link is enough), so
8 means "finished" here as much as 0 does.

How it differs from the crawler (see SPEC), all measured on a local nginx:
- one connection, one request at a time; no delay (`--wait` unset), so it is unthrottled;
- `--domains` is a suffix match on the host name, exact for IP addresses like 127.0.1.1
  (`127.0.1.1` does not match `127.0.1.11`); the port is ignored, as in the crawler;
- `--follow-tags=a,area,base,meta`: without `base`, `<base href>` is ignored; without `meta`,
  `<meta name=robots content=nofollow>` is ignored. With `meta`, wget also follows
  `<meta http-equiv=refresh>` targets, which the crawler does not;
- `rel=nofollow` links are followed (wget has no such rule);
- a redirect is followed inside one request, so the target of a redirect to an out-of-scope
  host is fetched (not crawled further); the crawler filters the target like a link;
- no URL normalization beyond resolving: `/a/%70.html` and `/a/p.html` are two URLs, both
  fetched (and saved to one file);
- each seed is a recursion of its own: pages already saved are not fetched again but are read
  back from disk and parsed again, and every URL that answered 4xx/5xx is fetched again, once
  per seed that reaches it. With many seeds on one connected site this costs wget CPU and
  requests that one seed would not;
- robots.txt is fetched once per host (`-e robots=on`), but not for the host of a redirect
  target; `-e robots=off` also turns off `<meta name=robots>` nofollow; `--tries=1`: no retries;
- bodies are saved to files (4xx bodies are not), not to a database.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

WGET = "/usr/bin/wget"


def wget_argv(job: dict[str, Any]) -> list[str]:
    """wget's full argv (argv[0] included) for a peers job."""
    robots = "on" if job.get("obey_robots", True) else "off"
    return [
        WGET,
        "--no-config",  # a site's /etc/wgetrc must not change what is measured
        "--recursive",
        "--level=inf",
        "--no-verbose",
        "--span-hosts",  # several hosts; --domains below is the scope
        f"--domains={','.join(job['allowed_hosts'])}",
        f"--directory-prefix={Path(job['out']) / 'wget'}",
        f"--user-agent={job['user_agent']}",
        "-e",
        f"robots={robots}",
        "--follow-tags=a,area,base,meta",
        "--max-redirect=5",
        "--tries=1",
        "--timeout=30",
        *job["seeds"],
    ]


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or (len(argv) == 3 and argv[2] != "--print"):
        print("usage: wget_peer.py JOB [--print]", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[1]).read_text())
    args = wget_argv(job)
    if len(argv) == 3:
        print(json.dumps(args))
        return 0
    sys.stdout.flush()
    os.execv(WGET, args)  # never returns


if __name__ == "__main__":
    sys.exit(main(sys.argv))
