# jaring: `make test` sets up a fresh Debian machine (as root) and runs every
# test; `make demo` runs the clusterless quick start. Both are idempotent.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := containernetworking-plugins iproute2 iputils-ping iptables nftables procps
PKGS := cni metaplugin delegates operator

.PHONY: test demo deps venv lint typecheck unit bench clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# mypy cannot follow setuptools' editable finder: give it a tree of links
# with the installed package names.
.typecheck/jaring: Makefile
	mkdir -p .typecheck/jaring
	for p in $(PKGS); do ln -sfn ../../$$p .typecheck/jaring/$$p; done

typecheck: venv .typecheck/jaring
	$(VENV)/bin/mypy -p jaring.cni -p jaring.metaplugin -p jaring.delegates -p jaring.operator

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: deps venv lint typecheck
	$(PY) -m pytest -q -p no:cacheprovider --durations=15 tests

demo: deps venv
	$(VENV)/bin/jaringctl demo examples/quickstart

bench: deps venv
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .typecheck build *.egg-info
