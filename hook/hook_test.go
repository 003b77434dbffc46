package hook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestCallAllowsAndDenies(t *testing.T) {
	var got Request
	answers := map[string]struct {
		status int
		body   string
	}{
		"/zero":    {200, "0"},
		"/json":    {200, `{"code": 0, "data": null}`},
		"/refuse":  {200, `{"code": 403}`},
		"/status":  {403, "0"},
		"/garbage": {200, "<html>"},
		"/nonzero": {200, "1"},
		"/nocode":  {200, `{}`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&got)
		a := answers[r.URL.Path]
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	defer srv.Close()
	req := Request{Action: "on_play", ClientID: "7", IP: "127.0.0.1", Vhost: "v", App: "live", TcURL: "rtmp://h/live", Stream: "s", Param: "?token=x"}
	for path, allow := range map[string]bool{"/zero": true, "/json": true, "/refuse": false, "/status": false, "/garbage": false, "/nonzero": false, "/nocode": false} {
		err := Call(context.Background(), srv.URL+path, req)
		if allow && err != nil {
			t.Errorf("%s: %v", path, err)
		}
		var d *Denied
		if !allow && !errors.As(err, &d) {
			t.Errorf("%s: %v, want a Denied", path, err)
		}
	}
	if got.Action != "on_play" || got.Param != "?token=x" || got.TcURL != "rtmp://h/live" {
		t.Errorf("hook got %+v", got)
	}
}

func TestCallTimesOut(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := Call(ctx, srv.URL, Request{Action: "on_connect"}); err == nil {
		t.Fatal("a hook that never answers allowed")
	}
}

func TestCallReadsChunkedAndCloseDelimitedAnswers(t *testing.T) {
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"code":`))
		w.(http.Flusher).Flush() // forces chunked encoding
		_, _ = w.Write([]byte(` 0}`))
	}))
	defer chunked.Close()
	if err := Call(context.Background(), chunked.URL, Request{Action: "on_play"}); err != nil {
		t.Fatalf("chunked answer: %v", err)
	}
	if err := Call(context.Background(), "https://example.com/hook", Request{Action: "on_play"}); err == nil {
		t.Fatal("an https hook URL was called")
	}
}
