# The whole set-up is two commands: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
# Debian packages the tests use as independent peers and checkers.
DEB_PACKAGES := tshark socat netcat-openbsd iproute2 iputils-ping curl openssh-server openssh-client strace chromium \
	busybox bind9-dnsutils swaks nftables iputils-arping dnsmasq-base

.PHONY: demo test lint bench sysdeps install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(PY) pyproject.toml
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/stacklab tour

# Installs the Debian packages the tests need when they are missing (needs root and apt-get).
sysdeps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null || exit 1; \
	  else echo "WARNING: missing Debian packages:$$missing (tests that need them will fail in CI)"; fi; \
	fi

test: sysdeps lint
	$(PY) -m pytest -q

# ruff everywhere; mypy strict on wire/ and stack/, normal elsewhere (pyproject.toml [tool.mypy])
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check stacklab tests bench tools
	$(VENV)/bin/mypy

# All benchmarks (figures for BENCHMARKS.md); tap_tcp and lossy_linux need root and say so otherwise.
# NS3_PYTHON: the python of a venv with the ns3 package (BENCHMARKS.md §1), to compare with ns-3.
NS3_PYTHON ?=
bench: $(VENV)/.installed-test
	$(PY) bench/wire.py
	$(PY) bench/sim_tcp.py --profile $(if $(NS3_PYTHON),--ns3-python $(NS3_PYTHON))
	$(PY) bench/sim_topo.py $(if $(NS3_PYTHON),--ns3-python $(NS3_PYTHON))
	$(PY) bench/scale.py
	$(PY) bench/tap_tcp.py
	$(PY) bench/lossy_linux.py

# Coverage-guided fuzzing of every frame entry point (tests/fuzz/run.py): FUZZ_SECONDS of atheris
# (the `fuzz` extra), or FUZZ_ENGINE=seeded for the seeded mutator without it. Findings are
# written to tests/fuzz/crashes/; the short runs are part of `make test`.
.PHONY: fuzz
FUZZ_SECONDS ?= 600
FUZZ_ENGINE ?= atheris
$(VENV)/.installed-fuzz: $(VENV)/.installed-test pyproject.toml
	$(PIP) install -q -e '.[test,fuzz]'
	touch $@

fuzz: $(VENV)/.installed-fuzz
	$(PY) -m tests.fuzz.run $(if $(filter atheris,$(FUZZ_ENGINE)),--atheris) --keep-going --seconds $(FUZZ_SECONDS)

# The optional compiled tier (tools/build_compiled.py, issue #23 item 5): mypyc compiles the hot
# modules in a copy, build/compiled/; the checkout stays pure Python, the default and what `make
# test` and CI run. bench-compiled prints both tiers' bulk benchmark, one after the other.
.PHONY: compiled bench-compiled test-compiled
COMPILED_STAMP := build/compiled/.built
$(VENV)/.installed-compiled: $(VENV)/.installed-test pyproject.toml
	$(PIP) install -q -e '.[test,compiled]'
	touch $@
$(COMPILED_STAMP): $(VENV)/.installed-compiled $(shell find stacklab bench tools -name '*.py')
	$(PY) tools/build_compiled.py
	touch $@
compiled: $(COMPILED_STAMP)
bench-compiled: $(COMPILED_STAMP)
	$(PY) bench/sim_tcp.py --repeats 3 $(if $(NS3_PYTHON),--ns3-python $(NS3_PYTHON))
	cd build/compiled && ../../$(PY) bench/sim_tcp.py --repeats 3 $(if $(NS3_PYTHON),--ns3-python $(NS3_PYTHON))
test-compiled: $(COMPILED_STAMP)
	cd build/compiled && ../../$(PY) -m pytest -q -m "not interop"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
