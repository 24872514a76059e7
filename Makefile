# Two commands on a fresh machine (Python >= 3.11 and pip):
#   make demo   -- install into .venv, then run bank + insurer + arbiter on the bundled data
#   make test   -- install into .venv, then run the test suite (everything but benchmarks)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: install demo test lint bench clean proto

$(BIN)/fedrisk: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/fedrisk

install: $(BIN)/fedrisk

demo: install
	$(BIN)/fedrisk demo

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not benchmark" -q

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/pip install --quiet -e '.[dev,bench]' || echo "sf-heu unavailable: --vs-heu will be skipped"
	$(BIN)/python -m benchmarks.paillier
	$(BIN)/python -c "import heu" 2>/dev/null && $(BIN)/python -m benchmarks.paillier --vs-heu || true
	$(BIN)/python -m benchmarks.vertical_lr
	$(BIN)/python -m benchmarks.secureboost
	$(BIN)/python -m benchmarks.binning
	$(BIN)/python -m benchmarks.services
	$(BIN)/python -m benchmarks.secagg
	$(BIN)/python -m benchmarks.dp

# Regenerate the committed gRPC stubs after editing federation/proto/transport.proto.
proto:
	$(PYTHON) -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. federation/proto/transport.proto

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
