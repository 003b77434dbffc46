package resp

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// defaultPort is Redis's port, for a URL that names none.
const defaultPort = "6379"

// ParseURL reads redis://[[user]:password@]host[:port][/db], or rediss://
// for TLS (the server's certificate checked against the system's roots).
// With a user, AUTH names it (Redis 6 ACLs); with only a password, AUTH
// sends the password alone. The port defaults to 6379, db to 0. Query
// parameters are refused: the caller sets the timeouts.
func ParseURL(s string) (Options, error) {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL and its password
		}
		return Options{}, fmt.Errorf("resp: bad URL: %w", err)
	}
	var o Options
	switch u.Scheme {
	case "redis":
	case "rediss":
		o.TLS = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	default:
		return Options{}, fmt.Errorf("resp: %s: the scheme must be redis:// or rediss://", u.Redacted())
	}
	if u.Hostname() == "" {
		return Options{}, fmt.Errorf("resp: %s: no host", u.Redacted())
	}
	port := u.Port()
	if port == "" {
		port = defaultPort
	}
	o.Addr = net.JoinHostPort(u.Hostname(), port)
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return Options{}, fmt.Errorf("resp: %s: the path must be a database number, got %q", u.Redacted(), u.Path)
		}
		o.DB = n
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Options{}, errors.New("resp: " + u.Redacted() + ": query parameters and fragments are not supported")
	}
	return o, nil
}
