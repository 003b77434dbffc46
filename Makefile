# rtmpedge: an RTMP origin/edge server on gnet.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
CONFIG  ?=
TAGS    ?=

.PHONY: all build run test fuzz bench bench-micro bench-quick bench-ingest bench-streams soak clean deps deps-test install uninstall

all: build

deps:
	@scripts/deps.sh

deps-test:
	@scripts/deps.sh --test

## build: the binaries into bin/, static (no libc: 1.9 MB less resident memory, one file to deploy;
## the race detector of `test` needs cgo, the servers do not)
build: deps
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

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
	$(GO) test -run=NONE -fuzz=FuzzParseVideo -fuzztime=$(FUZZTIME) $(FUZZFLAGS) ./codec
	$(GO) test -run=NONE -fuzz=FuzzParseAudio -fuzztime=$(FUZZTIME) $(FUZZFLAGS) ./codec
	$(GO) test -run=NONE -fuzz=FuzzReply -fuzztime=$(FUZZTIME) $(FUZZFLAGS) ./cluster/resp

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
	CGO_ENABLED=0 $(GO) build -trimpath -tags pprof -o bin/rtmpedge-pprof ./cmd/rtmpedge
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/rtmpbench ./cmd/rtmpbench
	./bin/rtmpbench soak -server bin/rtmpedge-pprof -d $(SOAK_D) -out $(SOAK_OUT) $(SOAK_ARGS)

## install: bin/rtmpedge (built first if missing) to $(PREFIX)/bin, the starter config to
## /etc/rtmpedge/rtmpedge.yaml (an existing one is kept, never overwritten), the systemd unit to
## UNITDIR and the sysctl settings to /etc/sysctl.d/60-rtmpedge.conf (applied at boot, or now
## with sysctl --system), and creates the rtmpedge system user if missing. DESTDIR=dir stages the
## tree under dir (no user, no systemctl). The service is not enabled or started: see docs/DEPLOY.md.
PREFIX      ?= /usr/local
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(SYSCONFDIR)/systemd/system
SYSCTLDIR   ?= $(SYSCONFDIR)/sysctl.d
INSTALL_BIN ?= bin/rtmpedge
# The comment install gives the user it creates: uninstall removes only a user bearing it.
RTMPEDGE_USER_COMMENT := rtmpedge server (make install)
install:
	@[ -x "$(INSTALL_BIN)" ] || $(MAKE) build
	install -d -m 0755 "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(SYSCONFDIR)/rtmpedge" "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(SYSCTLDIR)"
	@# A new file renamed over the old one: a running server keeps its binary until restarted.
	install -m 0755 "$(INSTALL_BIN)" "$(DESTDIR)$(PREFIX)/bin/.rtmpedge.new"
	mv -f "$(DESTDIR)$(PREFIX)/bin/.rtmpedge.new" "$(DESTDIR)$(PREFIX)/bin/rtmpedge"
	sed -e 's|/usr/local/bin/rtmpedge|$(PREFIX)/bin/rtmpedge|g' -e 's|/etc/rtmpedge/|$(SYSCONFDIR)/rtmpedge/|g' \
		deploy/rtmpedge.service > "$(DESTDIR)$(UNITDIR)/.rtmpedge.service.new"
	chmod 0644 "$(DESTDIR)$(UNITDIR)/.rtmpedge.service.new"
	mv -f "$(DESTDIR)$(UNITDIR)/.rtmpedge.service.new" "$(DESTDIR)$(UNITDIR)/rtmpedge.service"
	install -m 0644 deploy/sysctl.conf "$(DESTDIR)$(SYSCTLDIR)/60-rtmpedge.conf"
	@if [ -z "$(DESTDIR)" ] && ! getent passwd rtmpedge >/dev/null; then \
		echo "useradd --system rtmpedge"; \
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --comment "$(RTMPEDGE_USER_COMMENT)" rtmpedge; \
	fi
	@# The config may hold api.auth and hook tokens: readable by the service's group, not by all.
	@cfg="$(DESTDIR)$(SYSCONFDIR)/rtmpedge/rtmpedge.yaml"; \
	if [ -e "$$cfg" ]; then \
		echo "kept the existing $$cfg (the starter is deploy/rtmpedge.yaml)"; \
	else \
		echo "install -m 0640 deploy/rtmpedge.yaml $$cfg"; \
		install -m 0640 deploy/rtmpedge.yaml "$$cfg"; \
		if [ -z "$(DESTDIR)" ]; then chgrp rtmpedge "$$cfg"; fi; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed. Next: sysctl --system; $(PREFIX)/bin/rtmpedge -t -c $(SYSCONFDIR)/rtmpedge/rtmpedge.yaml; systemctl enable --now rtmpedge"

## uninstall: stop and disable the service, remove what install added (binary, unit, sysctl
## file, the user install created), keeping /etc/rtmpedge/rtmpedge.yaml. Sysctl values set at boot
## stay in effect until the next reboot.
uninstall:
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl disable --now rtmpedge.service 2>/dev/null || true; fi
	rm -f "$(DESTDIR)$(PREFIX)/bin/rtmpedge" "$(DESTDIR)$(UNITDIR)/rtmpedge.service" "$(DESTDIR)$(SYSCTLDIR)/60-rtmpedge.conf"
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@if [ -z "$(DESTDIR)" ] && [ "$$(getent passwd rtmpedge | cut -d: -f5)" = "$(RTMPEDGE_USER_COMMENT)" ]; then \
		cfg="$(SYSCONFDIR)/rtmpedge/rtmpedge.yaml"; \
		if [ -e "$$cfg" ]; then chgrp root "$$cfg"; fi; \
		echo "userdel rtmpedge"; userdel rtmpedge; \
	fi
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/rtmpedge/rtmpedge.yaml"

clean:
	rm -rf bin
