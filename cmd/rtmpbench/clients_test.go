package main

import (
	"strings"
	"testing"

	"github.com/rtmpedge/rtmpedge/bench"
)

func TestClientRuns(t *testing.T) {
	order := []bench.Kind{{Name: "ours-350ms"}, {Name: "nginx-rtmp"}, {Name: "floor-350ms"}, {Name: "ours-httpflv"}}
	names := func(client string) string {
		runs, err := clientRuns(order, client)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range runs {
			out = append(out, r.name+"="+r.client)
		}
		return strings.Join(out, " ")
	}
	for client, want := range map[string]string{
		"rtmpbench": "ours-350ms=rtmpbench nginx-rtmp=rtmpbench floor-350ms=rtmpbench ours-httpflv=rtmpbench",
		"rtmpdump":  "ours-350ms=rtmpdump nginx-rtmp=rtmpdump floor-350ms=rtmpdump ours-httpflv=rtmpdump",
		"both":      "ours-350ms=rtmpbench ours-350ms-rtmpdump=rtmpdump nginx-rtmp=rtmpbench nginx-rtmp-rtmpdump=rtmpdump floor-350ms=both ours-httpflv=both",
	} {
		if got := names(client); got != want {
			t.Errorf("%s: got %s, want %s", client, got, want)
		}
	}
	if _, err := clientRuns(order, "vlc"); err == nil {
		t.Error("an unknown client was accepted")
	}
}
