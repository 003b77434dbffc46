#!/usr/bin/env bash
# Installs what the server and its tests need on Debian: Go modules, and
# with --test ffmpeg/ffprobe, rtmpdump, nginx and its RTMP module
# (libnginx-mod-rtmp, for the interop tests) and GStreamer (gst-launch-1.0
# with flvmux, rtmp2sink and the librtmp-based rtmpsink, for the publisher
# tests), and for the tests with real players (e2e/browser_test.go,
# e2e/vlc_test.go) Chromium, VLC (vlc-bin with vlc-plugin-base: HTTP and
# RTMP access, FLV demux, H.264 decoder, dummy outputs) and npm (which the
# browser test uses to fetch mpegts.js into its git-ignored cache), jq and
# prometheus (promtool and a server) for the API tests, and redis-server (the
# origin cluster's registry: the tests start their own on free ports) from
# apt when they are missing.
set -euo pipefail

if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go 1.26 or newer is required (https://go.dev/doc/install); 'go' is not on PATH" >&2
	exit 1
fi

nginx_rtmp_module=/usr/lib/nginx/modules/ngx_rtmp_module.so

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v rtmpdump >/dev/null 2>&1 || missing+=(rtmpdump)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# nginx is usually in /usr/sbin, which a user's PATH may lack.
nginx_bin_missing=0
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || nginx_bin_missing=1
[ "$nginx_bin_missing" -eq 1 ] && missing+=(nginx)
[ -f "$nginx_rtmp_module" ] || missing+=(libnginx-mod-rtmp)
if ! command -v gst-launch-1.0 >/dev/null 2>&1 || ! command -v gst-inspect-1.0 >/dev/null 2>&1 ||
	! gst-inspect-1.0 rtmp2sink >/dev/null 2>&1 || ! gst-inspect-1.0 rtmpsink >/dev/null 2>&1 ||
	! gst-inspect-1.0 flvmux >/dev/null 2>&1; then
	missing+=(gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
fi
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v cvlc >/dev/null 2>&1 || missing+=(vlc-bin)
compgen -G '/usr/lib/*/vlc/plugins/demux/libavformat_plugin.so' >/dev/null || missing+=(vlc-plugin-base)
# npm brings Debian's nodejs; a Node.js installed otherwise (with its own
# npm) is left alone.
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The API tests read JSON with jq, lint /metrics with promtool and scrape it
# with a real Prometheus server (both from the prometheus package).
command -v jq >/dev/null 2>&1 || missing+=(jq)
prometheus_missing=0
{ command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; } || prometheus_missing=1
[ "$prometheus_missing" -eq 1 ] && missing+=(prometheus)
# The tests run their own redis-server; the package's service is not used.
redis_missing=0
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || redis_missing=1
[ "$redis_missing" -eq 1 ] && missing+=(redis-server)

if [ "${1:-}" = "--test" ] && [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	# Deduplicate (ffmpeg may be listed twice).
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	echo "deps: installing ${missing[*]} with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

	# The nginx package may start its own service (on :80). The tests run
	# their own nginx instances with their own config and pid file and never
	# use it, so stop it if this install started it (an nginx installed
	# before is left alone).
	if [ "$nginx_bin_missing" -eq 1 ]; then
		stopped=0
		if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
			$sudo systemctl stop nginx && stopped=1 || true
		fi
		if [ "$stopped" -eq 0 ] && command -v service >/dev/null 2>&1; then
			$sudo service nginx stop >/dev/null 2>&1 && stopped=1 || true
		fi
		if [ "$stopped" -eq 0 ] && [ -s /run/nginx.pid ]; then
			pid=$(cat /run/nginx.pid)
			case "$pid" in
			'' | *[!0-9]*) ;;
			*) $sudo kill "$pid" 2>/dev/null || true ;;
			esac
		fi
	fi
	# Likewise the Prometheus service the package may start (the tests run
	# their own on free ports).
	if [ "$prometheus_missing" -eq 1 ] && command -v systemctl >/dev/null 2>&1 &&
		systemctl is-active --quiet prometheus 2>/dev/null; then
		$sudo systemctl stop prometheus || true
	fi
	# Likewise the redis-server service this install may have started (on
	# :6379, which the example cluster uses).
	if [ "$redis_missing" -eq 1 ]; then
		if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
			$sudo systemctl stop redis-server || true
		elif command -v service >/dev/null 2>&1; then
			$sudo service redis-server stop >/dev/null 2>&1 || true
		fi
	fi
fi
go mod download
