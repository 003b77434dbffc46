# rtmpedge: an RTMP origin/edge server on gnet.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
CONFIG  ?=
TAGS    ?=

.PHONY: all build run test fuzz bench bench-micro bench-quick bench-ingest bench-streams soak clean deps deps-test

all: build

deps:
	@scripts/deps.sh

deps-test:
	@scripts/deps.sh --test

## build: the binaries into bin/
build: deps
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

## run: the server on its embedded default config (RTMP on :1935), or CONFIG=file
run: build
	./bin/rtmpedge $(if $(CONFIG),-c $(CONFIG))

## test: the whole suite: vet, unit tests, fuzz seed corpora, end-to-end tests with real clients, all under -race
test: deps-test
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

## fuzz: run each fuzz target for FUZZTIME (default 60s)
FUZZTIME ?= 60s
# A short minimization keeps a long run from stalling a minute on every new input.
FUZZFLAGS ?= -fuzzminimizetime=5s
fuzz:
	$(GO) test -run=NONE -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) $(FUZZFLAGS) ./amf
	$(GO) test -run=NONE -fuzz=FuzzReader -fuzztime=$(FUZZTIME) $(FUZZFLAGS) ./chunk
	$(GO) test -run=NONE -fuzz=FuzzServerHandshake -fuzztime=$(FUZZTIME) $(FUZZFLAGS) ./chunk
	$(GO) test -run=NONE -fuzz=FuzzSession -fuzztime=$(FUZZTIME) $(FUZZFLAGS) ./loop
	$(GO) test -run=NONE -fuzz=FuzzParseRequest -fuzztime=$(FUZZTIME) $(FUZZFLAGS) ./httpflv
	$(GO) test -run=NONE -fuzz=FuzzParseFrame -fuzztime=$(FUZZTIME) $(FUZZFLAGS) ./httpflv

## bench-micro: micro-benchmarks of the hot path (allocations reported)
bench-micro:
	$(GO) test -run=NONE -bench=. -benchmem ./chunk ./edge ./loop ./pool ./bench ./amf

## bench: the micro-benchmarks, then the side-by-side comparison with nginx-rtmp and the floor
## (500 players, 3 alternating runs, scaling sweep, cold start, publish/forward load; ~20 min).
## Results, tables and plots go to BENCH_OUT.
BENCH_OUT ?= bench-out
BENCH_ARGS ?=
bench: deps-test build bench-micro
	./bin/rtmpbench compare -out $(BENCH_OUT) $(BENCH_ARGS)

## bench-ingest: publish and forward loads, ours against nginx-rtmp (and SRS when SRS=path/to/srs),
## 3 alternating runs (~15 minutes with SRS). Results, tables and plots go to BENCH_OUT/ingest.
SRS ?=
bench-ingest: deps-test build
	./bin/rtmpbench ingest -out $(BENCH_OUT)/ingest $(if $(SRS),-srs $(SRS)) $(BENCH_ARGS)

## bench-streams: many streams on one edge (200 x 5 and 50 x 20 players), ours against nginx-rtmp (and
## SRS), 3 alternating runs (~25 minutes with SRS). Results, tables and plots go to BENCH_OUT/streams.
bench-streams: deps-test build
	./bin/rtmpbench streams -out $(BENCH_OUT)/streams $(if $(SRS),-srs $(SRS)) $(BENCH_ARGS)

## bench-quick: a 2-minute version of the comparison
bench-quick: deps-test build
	./bin/rtmpbench compare -out $(BENCH_OUT) -players 200 -runs 1 -d 10s -scaling "" -cold 2 -publishers 10 -scaling-d 5s

## soak: SOAK_D (30m) of two origins and an edge under churn: ffmpeg publishers coming and going,
## 300 players joining and leaving (some resetting, some never reading, some rtmpdump), origin 1
## SIGKILLed every 4 minutes, a hook server sometimes slow or down; samples RSS, goroutines
## (pprof build), fds, threads and CPU every 5 s and judges the slopes, the longest wait for media and
## the edge's survival. Not part of test. Results, table and plot go to SOAK_OUT.
SOAK_D ?= 30m
SOAK_OUT ?= bench-out/soak
SOAK_ARGS ?=
soak: deps-test
	$(GO) build -trimpath -tags pprof -o bin/rtmpedge-pprof ./cmd/rtmpedge
	$(GO) build -trimpath -o bin/rtmpbench ./cmd/rtmpbench
	./bin/rtmpbench soak -server bin/rtmpedge-pprof -d $(SOAK_D) -out $(SOAK_OUT) $(SOAK_ARGS)

clean:
	rm -rf bin
