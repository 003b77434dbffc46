package loop

import (
	"fmt"
	"net/url"
	"strings"
)

// target is what a connect names.
type target struct {
	tcURL string
	vhost string // from ?vhost= or the tcUrl host
	app   string // without query
	query string // query of the tcUrl
}

// parseConnect reads the vhost and app from a connect's tcUrl and app
// fields. A ?vhost= parameter (on the tcUrl or the app) wins over the host.
func parseConnect(tcURL, app string) (target, error) {
	t := target{tcURL: tcURL}
	var params url.Values
	if tcURL != "" {
		u, err := url.Parse(tcURL)
		if err != nil {
			return t, fmt.Errorf("tcUrl %q: %w", tcURL, err)
		}
		t.vhost = u.Hostname()
		params = u.Query()
		t.query = u.RawQuery
		if app == "" {
			app = strings.TrimPrefix(u.Path, "/")
		}
	}
	app, query := splitQuery(app)
	if v := params.Get("vhost"); v != "" {
		t.vhost = v
	}
	if q, err := url.ParseQuery(query); err == nil && q.Get("vhost") != "" {
		t.vhost = q.Get("vhost")
	}
	t.app = strings.Trim(app, "/")
	if t.app == "" {
		return t, fmt.Errorf("no app in tcUrl %q", tcURL)
	}
	return t, nil
}

// splitQuery splits "name?a=b" into "name" and "a=b".
func splitQuery(s string) (name, query string) {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}
