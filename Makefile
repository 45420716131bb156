# The two commands a newcomer needs: `make run` and `make test`.
VENV  := .venv
PY    := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean translations

$(STAMP): requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## Start the app with demo data on SQLite (instance/limonbilling.db) at http://127.0.0.1:5000,
## with the NestPay simulator on :5001 as the card gateway and a debugging SMTP server on :8025
## that prints every e-mail (the outbox worker delivers them; Settings → Notifications lists them)
run: $(STAMP)
	$(FLASK) db upgrade
	$(FLASK) billing demo --if-empty
	$(FLASK) billing use-simulator http://127.0.0.1:5001
	$(FLASK) billing use-debug-smtp 127.0.0.1:8025
	$(PY) -m limonbilling.sandbox --port 5001 & SIMULATOR=$$!; \
	  $(PY) -m aiosmtpd --nosetuid --listen 127.0.0.1:8025 & MAIL=$$!; \
	  $(FLASK) billing outbox run & WORKER=$$!; \
	  trap 'kill $$SIMULATOR $$MAIL $$WORKER 2>/dev/null' EXIT INT TERM; \
	  $(FLASK) run --host 127.0.0.1 --port 5000

## Run the linter and the whole test suite (SQLite and PostgreSQL), one worker per core
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n auto

## Benchmarks (not part of the tests): charge API under load, bank callbacks, big lists, memory; see bench/README.md
bench: $(STAMP)
	$(PY) -m bench

## Collect the texts to translate into the catalogues (limonbilling/translations/*/LC_MESSAGES/messages.po),
## then compile them; translate the new empty entries in the .po files and run it again
translations: $(STAMP)
	$(VENV)/bin/pybabel -q extract -F babel.cfg -k _l -o messages.pot .
	$(VENV)/bin/pybabel -q update -i messages.pot -d limonbilling/translations --no-fuzzy-matching --width 100
	rm messages.pot
	$(VENV)/bin/pybabel -q compile -d limonbilling/translations

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
