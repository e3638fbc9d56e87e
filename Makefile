# Two commands do all set-up on a fresh machine:
#   make run    create the environment and start the dashboard on a built-in dataset
#   make test   create the environment and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501

.PHONY: run test env browser i18n clean-env

$(VENV)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

env: $(VENV)/.installed

# Debian's chromium for the real-browser tests (playwright cannot download its own here), and
# fonts-noto-cjk so Chinese renders in the browser and in the decks' chart images.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: sudo apt-get install chromium (the browser test will be skipped)"; fi; }
	@fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk; \
	  else echo "no CJK font: sudo apt-get install fonts-noto-cjk (Chinese charts would show boxes)"; fi; }

# Translations: extract the marked strings (Babel), merge them into each .po, compile the .mo.
i18n: env
	$(PY) -m transfer_core.i18n_catalogue all

run: env
	$(PY) -m streamlit run app.py --server.port $(PORT)

test: env browser
	$(PY) -m pytest

clean-env:
	rm -rf $(VENV)
