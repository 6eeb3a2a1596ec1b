# The two commands of README.md: `make run` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/postgres

.PHONY: run test install postgres lint bench clean fonts chromium

# The virtualenv is rebuilt when pyproject.toml changes.
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The browser assets (bpmn-js) come from npm, pinned by package-lock.json; the pages serve
# them from node_modules, so nothing is fetched from the internet at run time.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund

# The analysts' studio (bpmn-js modeler, properties panel, dmn-js) is its own npm project,
# bundled by esbuild into web/static/studio/ (git-ignored); rebuilt when its sources change.
STUDIO_SOURCES := web/studio/package.json web/studio/package-lock.json web/studio/build.mjs $(wildcard web/studio/src/*)
web/static/studio/studio.js: $(STUDIO_SOURCES)
	cd web/studio && npm ci --no-audit --no-fund && npm run build

# Orders are rendered with DejaVu (every Kazakh letter); Debian's fonts-dejavu-core has it.
fonts:
	test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || (apt-get update && apt-get install -y fonts-dejavu-core)

install: $(BIN)/.installed node_modules/.package-lock.json web/static/studio/studio.js fonts

run: install
	$(BIN)/qorgau init
	$(BIN)/qorgau serve --port $(PORT)

# PostgreSQL 15 on 127.0.0.1:5432: start the local cluster when it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -n1) main start; \
	  for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The browser tests drive Debian's chromium through Playwright (a browser cannot be
# downloaded here, so `playwright install` is never used).
chromium:
	command -v chromium || (apt-get update && apt-get install -y chromium)

test: install postgres lint chromium
	QORGAU_TEST_PG_URL=$(PG_URL) $(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) var .pytest_cache
