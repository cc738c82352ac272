# Everything the project needs is installed from here; nothing is done by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= config.toml
DEMO_PORT ?= 8080
DB ?= crawl.db  # storage.path of $(CONFIG)

.PHONY: install test lint format crawl demo-site bench bench-deps bench-profile bench-guarantees bench-scale bench-revisit clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP) pg-deps browser-deps
	$(BIN)/pytest -n 4 --dist worksteal

# The PostgreSQL server the tests start for themselves (tests/pgserver.py): where that file
# looks for pg_ctl (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH), else Debian's package.
.PHONY: pg-deps
pg-deps:
	@test -x "$$(pg_config --bindir 2>/dev/null)/pg_ctl" \
		|| ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 \
		|| command -v pg_ctl >/dev/null \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql)

# The browser the report and live-page tests drive (tests/kit/browser.py): Debian's Chromium and
# its chromedriver, one Debian source, so their versions always match.
.PHONY: browser-deps
browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

lint: $(STAMP)
	$(BIN)/ruff check crawler tests bench
	$(BIN)/ruff format --check crawler tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix crawler tests bench
	$(BIN)/ruff format crawler tests bench

# Starts the bundled demo site on loopback, crawls it with config.toml, prints the summary.
crawl: $(STAMP)
	@$(BIN)/crawler demo-site --port $(DEMO_PORT) --quiet & demo=$$!; \
	trap 'kill $$demo 2>/dev/null' EXIT; \
	$(BIN)/python -m crawler.demo_site --wait-for $(DEMO_PORT) && \
	$(BIN)/crawler crawl $(CONFIG) && \
	$(BIN)/crawler stats $(DB)

# The crawler, text off and on, against Scrapy, crawlee-python, a raw aiohttp loop and wget on
# local nginx sites (bench/README.md). Scrapy and crawlee get venvs of their own
# (bench/.venv-scrapy, bench/.venv-crawlee), built on first use.
# Then the profile that explains the targets it misses (make bench-profile); exits 1 if one is.
bench: $(STAMP) bench-deps bytecode
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/perf.py --rounds 3 --write-readme; status=$$?; \
	$(BIN)/python bench/stages.py --write-readme && exit $$status

# What the benchmark serves and runs besides Python: nginx, wget, GNU time, the PostgreSQL docs,
# Django's docs (the big-page corpus) and MkDocs' docs (which ship a sitemap).
bench-deps:
	@command -v nginx >/dev/null && command -v wget >/dev/null && test -x /usr/bin/time \
		&& test -f /usr/share/doc/postgresql-doc-15/html/index.html \
		&& test -f /usr/share/doc/python-django-doc/html/index.html \
		&& test -f /usr/share/doc/mkdocs/html/sitemap.xml \
		|| (apt-get update -qq && apt-get install -y -qq nginx wget postgresql-doc-15 \
			python-django-doc mkdocs-doc time)

# A recrawl of the PostgreSQL docs with nothing changed (304s, bytes saved), and MkDocs' docs
# crawled without and with their sitemap (bench/README.md, "Sitemaps and recrawl").
bench-revisit: $(STAMP) bench-deps bytecode
	$(BIN)/python bench/recrawl.py
	$(BIN)/python bench/sitemaps.py

# The crawler's modules byte-compiled before a benchmark: an editable install gets no .pyc files
# written where PYTHONDONTWRITEBYTECODE is set, and each crawl would compile them again.
.PHONY: bytecode
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q crawler

# Where the crawler's CPU goes, by pipeline stage (py-spy samples; bench/README.md).
bench-profile: $(STAMP) bench-deps bytecode
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/stages.py --write-readme

# The 64-host site by 1 SQLite process and by 1, 2 and 4 processes sharing one PostgreSQL crawl:
# pages/s, CPU per page with the server's, round trips, politeness (bench/README.md, "Scaling
# out"). Rewrites its table in bench/README.md; exits 1 if a check or the CPU target fails.
bench-scale: $(STAMP) bench-deps pg-deps bytecode
	$(BIN)/pip install --quiet -e '.[bench,postgres]'
	$(BIN)/python bench/scale.py --rounds 1 --write-readme

# Politeness at scale, a million-URL frontier, every hostile trap, 512 KiB robots.txt files
# (docs/measurements.md).
bench-guarantees: $(STAMP)
	$(BIN)/python bench/politeness.py --hosts 60 --pages 30 --delay 0.2 --concurrency 64
	$(BIN)/python bench/frontier.py --urls 1000000 --fanout 300
	$(BIN)/python bench/traps.py
	$(BIN)/python bench/robots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache crawl.db crawl.db-wal crawl.db-shm
