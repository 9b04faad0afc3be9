# Palisade. `make help` lists the targets.
CARGO ?= cargo
PALISADE := target/debug/palisade

.PHONY: help run run-local images demo test unit e2e lint fmt crds deploy bench bench-handler bench-admission bench-scan bench-reports bench-agent scan-tools agent-tools coverage-images fuzz

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

run: ## Install Palisade with its chart and images built here: into KUBECONFIG's cluster, or a local cluster it starts (Ctrl-C removes it)
	@hack/run.sh

run-local: ## The developer loop: the binaries as local processes against the local cluster (or KUBECONFIG's, on this machine)
	@hack/run-local.sh

images: ## Build the images (Dockerfile, buildah) and push them to the local cluster's registry or REGISTRY=HOST:PORT
	@hack/images.sh $(if $(REGISTRY),--registry $(REGISTRY))

demo: ## Judge the sample workloads against the sample policies, printed as kubectl shows it
	$(CARGO) build --locked -q -p palisade-cli
	@echo '$$ palisade check -f config/samples/workloads -p config/samples'
	@$(PALISADE) check -f config/samples/workloads -p config/samples; \
	  status=$$?; [ $$status -le 1 ] || exit $$status

test: lint unit e2e ## Format check, clippy -D warnings, unit tests, then the end-to-end tests

unit: scan-tools agent-tools coverage-images ## Every test except the end-to-end ones
	$(CARGO) test --workspace --locked --exclude palisade-e2e

# One control plane for the e2e suite and the operator's API-server tests: the one
# PALISADE_E2E_KUBECONFIG names, else a local one started (and stopped) by hack/e2e.sh.
# The plain KUBECONFIG is never used.
e2e: ## Control-plane tests: the e2e suite and the operator's API-server tests (see "End-to-end tests" in the README)
	@hack/e2e.sh

scan-tools: ## Install the Debian tools the tests run (rpm, db5.3-util, docker-registry, umoci, skopeo, debootstrap, lua5.1, busybox-static, gcc)
	@hack/scan-tools.sh

coverage-images: ## Lay out the images of real packages the scanner is measured against syft on (scanner/tests/coverage_vs_syft.rs), and install syft
	@hack/coverage-images.sh >/dev/null

agent-tools: ## Install what building the agent's eBPF programs needs (clang, llvm, libelf-dev, zlib1g-dev, pkg-config)
	@hack/agent-tools.sh

lint: agent-tools ## Format check and clippy with -D warnings
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml

fuzz: ## Fuzz the scanner's parsers with AFL++ (cargo-afl), FUZZ_SECONDS per target (default 60), one at a time; not part of test
	@hack/fuzz.sh

crds: ## Regenerate the CRD YAML from the Rust types (config/crd, charts/palisade/crds)
	$(CARGO) run --locked -q -p palisade-cli -- crds --output-dir config/crd
	$(CARGO) run --locked -q -p palisade-cli -- crds --output-dir charts/palisade/crds

deploy: ## Regenerate the plain manifests config/deploy/*.yaml from the Helm chart (helm comes from hack/helm.sh)
	@config/deploy/render.sh

bench: ## Measure: in-process decision cost, then the webhook over TLS under load
	$(CARGO) bench --locked -p palisade-policy --bench decision
	$(CARGO) run --locked --release -q -p palisade-webhook --example loadgen

bench-handler: ## Instructions (callgrind) and wall time per admission review in process: a kubectl-style Pod CREATE, restricted preset
	@hack/bench-handler.sh

bench-admission: ## Pod-create latency and throughput, interleaved rounds: no webhook, a no-op webhook, Palisade (processes, chart), PodSecurityPolicy
	@hack/bench-admission.sh

bench-scan: ## Image scan time and peak RSS of palisade (cold and warm cache) against syft, on a mixed image (Debian + Go, Java, Ruby, Rust, Python, npm; ~2,300 packages) and Debian alone, from a local registry
	@hack/bench-scan.sh

bench-reports: ## Memory of the operator and the webhook with 1,000 ImageScanReports cached, against none
	@hack/bench-reports.sh

bench-agent: ## The node agent without a cluster (root): records/s, drops, CPU and RSS at Falco's rate and full speed; an exec loop with and without it
	@hack/bench-agent.sh
