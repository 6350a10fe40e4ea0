# The two commands:
#   make demo   compile the real all-MiniLM-L6-v2, check it against onnxruntime, benchmark it, build the demo page's
#               bundles
#   make test   the whole test suite
# Both install what is missing first (Debian packages, the Python package with its extras) and are safe to rerun.

PYTHON ?= python3
PIP := $(PYTHON) -m pip
APT_PACKAGES := mesa-vulkan-drivers chromium nodejs
STAMP := .setup-stamp

.PHONY: demo test setup models hub clean

$(STAMP): pyproject.toml $(wildcard package.json)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	$(PIP) install -q --disable-pip-version-check -e ".[test,export]"
	@if [ -f package.json ]; then npm install --no-audit --no-fund; fi
	@touch $(STAMP)

setup: $(STAMP)

# Pyodide with webjit's wheel, for the page that compiles a model in the browser (python -m webjit.pyodide_dist)
PYODIDE_DIST := build/pyodide/pyodide-lock.json
$(PYODIDE_DIST): $(STAMP) $(wildcard pyproject.toml package.json webjit/*.py webjit/*/*.py webjit/templates_*/* web/*.js web/*/*.js)
	$(PYTHON) -m webjit.pyodide_dist -o build/pyodide

models: setup
	$(PYTHON) -m demo_models minilm bert_base gpt2 llama

demo: setup $(PYODIDE_DIST)
	$(PYTHON) -m demo_models minilm --save-inputs
	webjit validate demo_models/.cache/minilm/model.onnx --inputs demo_models/.cache/minilm/inputs.npz
	webjit bench --native demo_models/.cache/minilm/model.onnx --inputs demo_models/.cache/minilm/inputs.npz
	$(PYTHON) -m demo_models.demo_bundle -o build/minilm-demo

# Hub-style repositories exported by Optimum in their own venv (build/optimum-venv), once; then cached
hub: setup
	$(PYTHON) -m demo_models hub all

test: setup $(PYODIDE_DIST) hub
	$(PYTHON) -m pytest -q -n 2

clean:
	rm -rf $(STAMP) build *.egg-info .pytest_cache
