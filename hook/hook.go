// Package hook calls the HTTP callbacks that decide connects, publishes and
// plays, with SRS's JSON body so existing SRS hook servers work unchanged.
package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Request is the JSON body posted to a hook (SRS field names).
type Request struct {
	Action   string `json:"action"` // on_connect, on_publish, on_play
	ClientID string `json:"client_id"`
	IP       string `json:"ip"`
	Vhost    string `json:"vhost"`
	App      string `json:"app"`
	TcURL    string `json:"tcUrl"`
	Stream   string `json:"stream,omitempty"`
	Param    string `json:"param,omitempty"` // the query of the stream name or tcUrl, with its "?"
	PageURL  string `json:"pageUrl,omitempty"`
	ServerID string `json:"server_id"`
}

// Denied is a hook's refusal.
type Denied struct {
	Status int    // HTTP status
	Code   int    // the body's code, when it had one
	Body   string // the start of the body
}

func (d *Denied) Error() string {
	return fmt.Sprintf("hook refused: HTTP %d, code %d, body %q", d.Status, d.Code, d.Body)
}

// maxBody is the most of a hook's answer that is read.
const maxBody = 64 << 10

// Call posts req to url and returns nil when the hook allows: HTTP 200 and
// a body of 0 or a JSON object with "code": 0. Anything else is a *Denied;
// a transport failure or ctx's deadline is an error too (it refuses).
func Call(ctx context.Context, client *http.Client, url string, req Request) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("hook %s: %w", req.Action, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("hook %s: %w", req.Action, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(hr)
	if err != nil {
		return fmt.Errorf("hook %s: %w", req.Action, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("hook %s: reading the answer: %w", req.Action, err)
	}
	text := strings.TrimSpace(string(b))
	code := -1
	if n, err := strconv.Atoi(text); err == nil {
		code = n
	} else {
		var ans struct {
			Code *int `json:"code"`
		}
		if json.Unmarshal(b, &ans) == nil && ans.Code != nil {
			code = *ans.Code
		}
	}
	if resp.StatusCode == http.StatusOK && code == 0 {
		return nil
	}
	return &Denied{Status: resp.StatusCode, Code: code, Body: text[:min(len(text), 200)]}
}
