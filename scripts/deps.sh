#!/usr/bin/env bash
# Installs what the server and its tests need on Debian: Go modules, and
# ffmpeg/ffprobe and rtmpdump from apt when they are missing.
set -euo pipefail

if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go 1.26 or newer is required (https://go.dev/doc/install); 'go' is not on PATH" >&2
	exit 1
fi

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
command -v rtmpdump >/dev/null 2>&1 || missing+=(rtmpdump)
if [ "${1:-}" = "--test" ] && [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	echo "deps: installing ${missing[*]} with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
go mod download
