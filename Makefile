# Palisade. `make help` lists the targets.
CARGO ?= cargo
PALISADE := target/debug/palisade

.PHONY: help demo test lint fmt crds bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

demo: ## Judge the sample workloads against the sample policies, printed as kubectl shows it
	$(CARGO) build --locked -q -p palisade-cli
	@echo '$$ palisade check -f config/samples/workloads -p config/samples'
	@$(PALISADE) check -f config/samples/workloads -p config/samples; \
	  status=$$?; [ $$status -le 1 ] || exit $$status

test: lint ## Format check, clippy with -D warnings, then every test
	$(CARGO) test --workspace --locked

lint: ## Format check and clippy with -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

crds: ## Regenerate the CRD YAML from the Rust types (config/crd, charts/palisade/crds)
	$(CARGO) run --locked -q -p palisade-cli -- crds --output-dir config/crd
	$(CARGO) run --locked -q -p palisade-cli -- crds --output-dir charts/palisade/crds

bench: ## Measure: in-process decision cost, then the webhook over TLS under load
	$(CARGO) bench --locked -p palisade-policy --bench decision
	$(CARGO) run --locked --release -q -p palisade-webhook --example loadgen
