package hook

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Notifications are posted in the background with their bodies; when the
// hook server is slower than they come, the queue's overflow is dropped and
// counted, and Notify never waits for the server.
func TestNotifierPostsAndDropsWhenFull(t *testing.T) {
	var mu sync.Mutex
	var got []Request
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Request
		_ = json.NewDecoder(r.Body).Decode(&req)
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		<-release // the hook server is stuck until released
		_, _ = w.Write([]byte("0"))
	}))
	defer srv.Close()
	n := NewNotifier(2, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	queued := 0
	for i := range 10 {
		if n.Notify(srv.URL+"/close", Request{Action: "on_close", ClientID: "c", SendBytes: uint64(i + 1), Duration: 1.5}, 5*time.Second) {
			queued++
		}
	}
	// One is being posted, two wait in the queue; the rest were dropped.
	if queued < 2 || queued > 3 {
		t.Fatalf("%d of 10 queued with a queue of 2 and one stuck worker", queued)
	}
	if _, _, dropped := n.Counts(); int(dropped) != 10-queued {
		t.Fatalf("dropped %d, want %d", dropped, 10-queued)
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.Close(ctx)
	sent, failed, _ := n.Counts()
	if int(sent) != queued || failed != 0 {
		t.Fatalf("sent %d failed %d, want %d and 0", sent, failed, queued)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != queued || got[0].Action != "on_close" || got[0].SendBytes == 0 || got[0].Duration != 1.5 {
		t.Fatalf("hook server got %+v", got)
	}
}

// A hook server that is down makes notifications fail, counted, without
// retries.
func TestNotifierCountsFailures(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	n := NewNotifier(8, 2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for range 3 {
		n.Notify(url+"/x", Request{Action: "on_stop"}, time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.Close(ctx)
	if sent, failed, dropped := n.Counts(); sent != 3 || failed != 3 || dropped != 0 {
		t.Fatalf("sent %d failed %d dropped %d, want 3, 3, 0", sent, failed, dropped)
	}
}
