// Package e2e holds the end-to-end tests: they build the real server
// binary, start it on free loopback ports and drive it with real clients
// (ffmpeg, ffprobe, rtmpdump) and the harness's Go client.
package e2e
