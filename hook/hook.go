// Package hook calls the HTTP callbacks that decide connects, publishes and
// plays, with SRS's JSON body so existing SRS hook servers work unchanged.
//
// It speaks plain HTTP/1.1 itself (one POST per connection) instead of
// using net/http: that package and the TLS stack it brings are 3 MB of
// binary, resident in every edge process, for a feature that posts a small
// JSON body to a local service. Hook URLs are http:// only; put a local
// TLS proxy in front of an https hook service.
package hook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Request is the JSON body posted to a hook (SRS field names).
type Request struct {
	Action   string `json:"action"` // on_connect, on_publish, on_play, on_unpublish, on_stop, on_close
	ClientID string `json:"client_id"`
	IP       string `json:"ip"`
	Vhost    string `json:"vhost"`
	App      string `json:"app"`
	TcURL    string `json:"tcUrl"`
	Stream   string `json:"stream,omitempty"`
	Param    string `json:"param,omitempty"` // the query of the stream name or tcUrl, with its "?"
	PageURL  string `json:"pageUrl,omitempty"`
	ServerID string `json:"server_id"`
	// For notifications (on_unpublish, on_stop, on_close): what the
	// connection sent and received, and how long it lasted in seconds.
	SendBytes uint64  `json:"send_bytes,omitempty"`
	RecvBytes uint64  `json:"recv_bytes,omitempty"`
	Duration  float64 `json:"duration,omitempty"`
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

// CheckURL reports whether u is a hook URL this package can call.
func CheckURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return err
	}
	if p.Scheme != "http" || p.Host == "" {
		return errors.New("must be an http:// URL (for https, put a local TLS proxy in front)")
	}
	return nil
}

// Call posts req to rawURL and returns nil when the hook allows: HTTP 200
// and a body of 0 or a JSON object with "code": 0. Anything else is a
// *Denied; a transport failure or ctx's deadline is an error too (it
// refuses).
func Call(ctx context.Context, rawURL string, req Request) error {
	if err := CheckURL(rawURL); err != nil {
		return fmt.Errorf("hook %s: %q: %w", req.Action, rawURL, err)
	}
	u, _ := url.Parse(rawURL)
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("hook %s: %w", req.Action, err)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("hook %s: %w", req.Action, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: rtmpedge\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		u.RequestURI(), u.Host, len(body))
	b.Write(body)
	if _, err := conn.Write(b.Bytes()); err != nil {
		return fmt.Errorf("hook %s: %w", req.Action, err)
	}
	status, answer, err := readResponse(bufio.NewReader(conn))
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("hook %s: %w", req.Action, err)
	}
	text := strings.TrimSpace(string(answer))
	code := -1
	if n, err := strconv.Atoi(text); err == nil {
		code = n
	} else {
		var ans struct {
			Code *int `json:"code"`
		}
		if json.Unmarshal(answer, &ans) == nil && ans.Code != nil {
			code = *ans.Code
		}
	}
	if status == 200 && code == 0 {
		return nil
	}
	return &Denied{Status: status, Code: code, Body: text[:min(len(text), 200)]}
}

// readResponse reads an HTTP/1.x response: status, headers, and a body
// sized by Content-Length, chunked, or ending at close; at most maxBody.
func readResponse(r *bufio.Reader) (int, []byte, error) {
	tp := textproto.NewReader(r)
	line, err := tp.ReadLine()
	if err != nil {
		return 0, nil, fmt.Errorf("reading the status line: %w", err)
	}
	proto, rest, _ := strings.Cut(line, " ")
	codeText, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(codeText)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil {
		return 0, nil, fmt.Errorf("not an HTTP/1 response: %q", line)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return 0, nil, fmt.Errorf("reading headers: %w", err)
	}
	var body io.Reader = io.LimitReader(r, maxBody)
	if strings.EqualFold(hdr.Get("Transfer-Encoding"), "chunked") {
		body = io.LimitReader(&chunkedReader{r: r}, maxBody)
	} else if cl := hdr.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return 0, nil, fmt.Errorf("bad Content-Length %q", cl)
		}
		body = io.LimitReader(r, min(n, maxBody))
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return 0, nil, fmt.Errorf("reading the body: %w", err)
	}
	return status, b, nil
}

// chunkedReader decodes a chunked transfer-encoded body.
type chunkedReader struct {
	r    *bufio.Reader
	left int64
	done bool
}

func (c *chunkedReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	if c.left == 0 {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		sizeText, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(sizeText, 16, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			c.done = true
			return 0, io.EOF
		}
		c.left = n
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left == 0 && err == nil {
		if _, err := c.r.Discard(2); err != nil { // CRLF after the chunk
			return n, err
		}
	}
	return n, err
}
