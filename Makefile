# Twofold's build. `make test` is what CI runs; `make help` lists the targets.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

# Pinned tool versions, installed into the git-ignored bin/ folder.
CONTROLLER_TOOLS_VERSION ?= v0.23.0
ENVTEST_K8S_VERSION ?= 1.37.2
HELM_VERSION ?= v3.22.0
KUSTOMIZE_VERSION ?= v5.8.2
IMG_REGISTRY ?= ghcr.io/twofold-dev
IMG_TAG ?= 0.1.0
# Images `make images` builds, the platforms of each multi-arch index, and where `make push` pushes.
IMAGES ?= manager,core,sidecar,sampleapp,pause
IMG_PLATFORMS ?= linux/amd64,linux/arm64
REGISTRY ?= $(IMG_REGISTRY)

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
GO_TEST_FLAGS ?= -count=1 -timeout 25m

# Packages controller-gen reads for CRDs, RBAC and webhook manifests.
CRD_PATHS := paths=./api/... paths=./controllers/... paths=./cmd/manager/...

.PHONY: all
all: build

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods of the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRDs (config/crd/bases) and RBAC (config/rbac) from the code.
	$(CONTROLLER_GEN) crd rbac:roleName=twofold-manager $(CRD_PATHS) output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac
	cp config/crd/bases/*.yaml charts/twofold/files/crds/
	cp config/rbac/role.yaml charts/twofold/files/rbac/role.yaml

.PHONY: verify-generated
verify-generated: $(CONTROLLER_GEN) ## Fail when generated files are stale (and regenerate them).
	CONTROLLER_GEN=$(CONTROLLER_GEN) hack/verify-generated.sh

.PHONY: fmt
fmt: ## Run gofmt on the code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: verify-fmt
verify-fmt: ## Fail when a Go file is not gofmt'd.
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "These files need gofmt (run make fmt):"; echo "$$out"; exit 1; fi

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: verify-fmt vet ## gofmt and go vet.

.PHONY: envtest
envtest: ## Build envtest's kube-apiserver and etcd into bin/k8s (cached).
	@test -x $(LOCALBIN)/k8s/$(ENVTEST_K8S_VERSION)/kube-apiserver -a -x $(LOCALBIN)/k8s/$(ENVTEST_K8S_VERSION)/etcd || \
		echo "==> Building kube-apiserver and etcd $(ENVTEST_K8S_VERSION) from source (first time only, about 5 minutes on 2 cores)"
	ENVTEST_ASSETS_DIR=$(LOCALBIN)/k8s/$(ENVTEST_K8S_VERSION) K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/envtest-assets.sh >/dev/null

.PHONY: test
.PHONY: chromium
chromium: ## Install Debian's chromium for the browser tests when it is missing.
	hack/chromium.sh >/dev/null

.PHONY: postgres
postgres: ## Install Debian's postgresql for the PostgreSQL store's tests when it is missing.
	hack/postgres.sh install >/dev/null

test: verify-generated lint envtest chromium postgres $(HELM) $(KUSTOMIZE) ## Run every test: unit, envtest, chart, browser, end-to-end, fuzz, real cluster (root).
	KUBEBUILDER_ASSETS="$$(ENVTEST_ASSETS_DIR=$(LOCALBIN)/k8s/$(ENVTEST_K8S_VERSION) K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/envtest-assets.sh)" \
	HELM_VERSION=$(HELM_VERSION) KUSTOMIZE_VERSION=$(KUSTOMIZE_VERSION) \
		go test $(GO_TEST_FLAGS) ./...
	$(MAKE) test-core-postgres
	$(MAKE) fuzz
	$(MAKE) cluster-test

# Fuzz targets for every parser an attacker reaches, as package:FuzzName.
FUZZ_TARGETS := ./contract/mfa:FuzzRequirementGrammar ./core/server:FuzzRequestsNeverCrashTheCore \
	./sidecar/proxy:FuzzReturnPathStaysOnTheOrigin ./sidecar/proxy:FuzzVerifyNeverAcceptsGarbage \
	./sidecar/proxy:FuzzCanonicalPathCoversWhatTheAppReads
FUZZTIME ?= 10s

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (make test runs them for 10s each; FUZZTIME=10m to hunt).
	for t in $(FUZZ_TARGETS); do go test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; done

# The packages whose tests start a core on the store TWOFOLD_TEST_STORE picks (core/coretest's
# New, StartOn or Database): found, not listed, so a test that moves to another package keeps
# running on PostgreSQL.
CORE_STORE_USE := coretest[.](New|StartOn|Database)[(]
CORE_STORE_PACKAGES = $(sort $(addprefix ./,$(dir $(shell grep -rlE --include='*_test.go' '$(CORE_STORE_USE)' core cmd))))

.PHONY: test-core-postgres
test-core-postgres: postgres ## Run the core's HTTP tests again on PostgreSQL instead of SQLite.
	TWOFOLD_TEST_STORE=postgres go test $(GO_TEST_FLAGS) $(CORE_STORE_PACKAGES)

.PHONY: helm-lint
helm-lint: $(HELM) ## Lint the chart with its default and ci/ values.
	$(HELM) lint charts/twofold --strict --kube-version $(ENVTEST_K8S_VERSION)
	for f in charts/twofold/ci/*-values.yaml; do $(HELM) lint charts/twofold --strict --kube-version $(ENVTEST_K8S_VERSION) -f $$f; done

##@ Cluster

CLUSTER_STATE ?= $(CURDIR)/.cluster

.PHONY: cluster-binaries
cluster-binaries: ## Build kubelet, kube-proxy, the controller-manager, scheduler, kubectl and CoreDNS into bin/k8s (cached).
	K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/cluster/binaries.sh >/dev/null

.PHONY: cluster-up
cluster-up: cluster-binaries ## Bring up a throw-away single-node cluster in $(CLUSTER_STATE) (root; see docs/testing.md).
	K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/cluster/up.sh $(CLUSTER_STATE)

.PHONY: cluster-down
cluster-down: ## Tear down the cluster in $(CLUSTER_STATE) and undo its changes to the machine.
	K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/cluster/down.sh $(CLUSTER_STATE)

.PHONY: cluster-test
cluster-test: cluster-binaries ## Run the tests on a real single-node cluster: harness, chart on SQLite and on PostgreSQL (root, about 8 minutes).
	K8S_VERSION=$(ENVTEST_K8S_VERSION) go test -tags cluster -count=1 -timeout 40m -v ./test/cluster/

.PHONY: bench-cluster
bench-cluster: cluster-binaries ## Measure the injected sidecar in a real pod at 1,000 req/s (root; LOAD_SECONDS per round, default 20).
	K8S_VERSION=$(ENVTEST_K8S_VERSION) TWOFOLD_LOAD_SECONDS=$(or $(LOAD_SECONDS),20) go test -tags cluster -count=1 -timeout 40m -v \
		-run 'TestTheChartRunsThreeCoreReplicasOnPostgreSQL' ./test/cluster/ | sed -n '/in-cluster load/,/peak memory/p'

##@ Demo

DEMO_PORT ?= 8080
DEMO_CORE_PORT ?= 3567

.PHONY: demo
demo: envtest ## Run the whole system locally: control plane, manager, core, sample app behind a sidecar.
	@echo "==> Building twofold-core, twofold-sidecar, the sample app and the demo"
	go build -o $(LOCALBIN)/twofold-core ./cmd/core
	go build -o $(LOCALBIN)/twofold-sidecar ./cmd/sidecar
	go build -o $(LOCALBIN)/sampleapp ./test/sampleapp
	go build -o $(LOCALBIN)/demo ./hack/demo
	@rm -rf .demo
	$(LOCALBIN)/demo -root . -bin $(LOCALBIN) -state .demo -port $(DEMO_PORT) -core-port $(DEMO_CORE_PORT) \
		-assets "$$(ENVTEST_ASSETS_DIR=$(LOCALBIN)/k8s/$(ENVTEST_K8S_VERSION) K8S_VERSION=$(ENVTEST_K8S_VERSION) hack/envtest-assets.sh)"

##@ Build

.PHONY: build
build: ## Build the binaries into bin/: twofold-manager, twofold-core, twofold-sidecar, kubectl-twofold.
	go build -o $(LOCALBIN)/twofold-manager ./cmd/manager
	go build -o $(LOCALBIN)/twofold-core ./cmd/core
	go build -o $(LOCALBIN)/twofold-sidecar ./cmd/sidecar
	go build -o $(LOCALBIN)/kubectl-twofold ./cmd/kubectl-twofold

.PHONY: krew
krew: ## Build the kubectl plugin's release archives and its krew manifest into bin/dist (VERSION, RELEASE_URL).
	hack/krew.sh

.PHONY: images
images: ## Build the images (IMAGES) for IMG_PLATFORMS into bin/images, without a container engine (docs/install.md).
	go run ./hack/images build -out $(LOCALBIN)/images -registry $(IMG_REGISTRY) -tag $(IMG_TAG) -images $(IMAGES) -platforms $(IMG_PLATFORMS)

.PHONY: push
push: images ## Push the multi-arch images to REGISTRY (e.g. make push REGISTRY=registry.example.com/team) with your docker login.
	go run ./hack/images push -out $(LOCALBIN)/images -registry $(REGISTRY)

$(HELM):
	hack/go-tool.sh helm helm.sh/helm/v3/cmd/helm $(HELM_VERSION) >/dev/null

$(KUSTOMIZE):
	hack/go-tool.sh kustomize sigs.k8s.io/kustomize/kustomize/v5 $(KUSTOMIZE_VERSION) >/dev/null

$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN)/.gobin go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/.gobin/controller-gen $(CONTROLLER_GEN)
