# artmesh: the two commands a new user needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/artmesh
PKGS_UNIT := $(shell $(GO) list ./... | grep -v /e2e)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test test-slow test-history unit e2e bench bench-keepup bench-scale bench-wide bench-sdk lint fuzz clean

all: build

# The commit goes into `artmesh version` even where Go records no VCS information.
COMMIT    := $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell test -n "$$(git status --porcelain --untracked-files=no 2>/dev/null)" && echo -dirty)

build:
	$(GO) build -ldflags "-X main.buildCommit=$(COMMIT)" -o $(BIN) ./cmd/artmesh

## run: build and start a single node in $$ARTMESH_PATH (default ~/.artmesh), initialising it on first start.
run: build
	./$(BIN) daemon --init

## test: vet, unit tests with the race detector, then end-to-end tests against the real binary.
test: build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 8m $(PKGS_UNIT)
	# Allocation tests cannot run under -race (it makes sync.Pool drop buffers).
	$(GO) test -count=1 -run 'AllocatesLittle' ./node/content/
	$(GO) test -count=1 -timeout 10m -skip '^($(SLOW_TESTS))$$' ./e2e/...

## test-slow: the e2e tests that take minutes by design (build tag slow) and the slowest of the rest
## (12-40 s each: the README's blocks, the Python SDK's suite, the history checker's seed, restarts
## and removals), kept out of `make test`'s 10 minutes on two cores; .ci/run runs them after `make test`.
SLOW_TESTS := TestFollowerRestartKeepsItsOnlyCopy|TestReadsNeverHang|TestFlippedBitSoleHolder|TestIsolatedLeaderWritesRejected|TestReplicationKeepsUp|TestReplicasSurviveWriterCrash|TestCollectorUnderLoad|TestVoterComesBack|TestStrangers|TestReadmeRuns|TestSDKPythonSuite|TestHistoryLinearizable|TestOldRepoAfterRecoveryFindsItWasRemoved|TestUploadURL|TestHistoryCheckerCatchesStaleReads|TestRemovedMemberIsCutOff|TestForgedForwardedWrites|TestWrongMeshKey|TestKillLeader|TestWholeMeshStaggeredRestart
test-slow: build
	$(GO) vet -tags slow ./e2e/
	$(GO) test -count=1 -tags slow -run '^($(SLOW_TESTS))$$' -timeout 15m ./e2e/

## test-history: the catalog's history checker (e2e/history_test.go), HISTORY_SEEDS runs (default 20) of
## HISTORY_DURATION (default 60s) on a 3-node mesh whose leader is killed again and again; `make test` runs one 15 s seed.
HISTORY_SEEDS ?= 20
HISTORY_DURATION ?= 60s
test-history: build
	HISTORY_SEEDS=$(HISTORY_SEEDS) HISTORY_DURATION=$(HISTORY_DURATION) $(GO) test -count=1 -v -run '^TestHistoryLinearizable$$' -timeout 0 ./e2e/

unit:
	$(GO) test -race -count=1 $(PKGS_UNIT)

e2e: build
	$(GO) test -count=1 -v -timeout 10m ./e2e/...

## bench: measure the machine's ceilings and the node against them; prints figures and ratios.
bench: build
	$(GO) run ./e2e/cmd/bench
	@$(MAKE) --no-print-directory bench-sdk

## bench-keepup: only the keep-up scenario (5 nodes, 50 mixed creates/s); BENCH_KEEPUP=60s shortens it.
bench-keepup: build
	$(GO) run ./e2e/cmd/bench -keepup-only

## bench-scale: only the scale section (one node, many snippets: create rate, RSS, restart, lists, a joiner); SCALE=1000000 for the full size; SCALE_ARGS adds flags such as -scale-pprof 6070.
bench-scale: build
	$(GO) run ./e2e/cmd/bench -scale-only $(SCALE_ARGS)

## bench-wide: only the wide section (WIDE nodes, default 30, in one mesh: idle CPU, RSS, creates against a 3-node mesh); WIDE_ARGS adds flags such as -wide-churn 2m or -wide-pprof 6060.
WIDE ?= 30
bench-wide: build
	$(GO) run ./e2e/cmd/bench -wide $(WIDE) $(WIDE_ARGS)

## bench-sdk: the Python SDK's 1 GiB upload_file and download_file against curl on one node, with its peak RSS.
bench-sdk: build
	python3 sdk/python/bench.py

## lint: formatting, vet and staticcheck.
lint:
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed on:"; gofmt -l .; exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## fuzz: run each fuzz target for a while (FUZZTIME, default 60s); their seed corpora run in `make test`.
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./acl -run '^$$' -fuzz FuzzParseToken -fuzztime $(FUZZTIME)
	$(GO) test ./api -run '^$$' -fuzz FuzzParseRange -fuzztime $(FUZZTIME)
	$(GO) test ./api -run '^$$' -fuzz FuzzParseFilter -fuzztime $(FUZZTIME)

clean:
	rm -rf bin
