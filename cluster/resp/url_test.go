package resp_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rtmpedge/rtmpedge/cluster/resp"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want resp.Options
		tls  bool
	}{
		{"redis://127.0.0.1:6379/0", resp.Options{Addr: "127.0.0.1:6379"}, false},
		{"redis://127.0.0.1:6379", resp.Options{Addr: "127.0.0.1:6379"}, false},
		{"redis://r:6380/", resp.Options{Addr: "r:6380"}, false},
		{"redis://r", resp.Options{Addr: "r:6379"}, false},
		{"redis://:pw@r:6379/2", resp.Options{Addr: "r:6379", Password: "pw", DB: 2}, false},
		{"redis://u:p%40ss@[::1]:7000/15", resp.Options{Addr: "[::1]:7000", Username: "u", Password: "p@ss", DB: 15}, false},
		{"redis://u@r:1", resp.Options{Addr: "r:1", Username: "u"}, false},
		{"rediss://redis.example.com:6380/1", resp.Options{Addr: "redis.example.com:6380", DB: 1}, true},
	} {
		got, err := resp.ParseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if (got.TLS != nil) != tc.tls {
			t.Errorf("%s: TLS %v", tc.url, got.TLS)
		}
		if tc.tls && (got.TLS.ServerName != "redis.example.com" || got.TLS.MinVersion != tls.VersionTLS12) {
			t.Errorf("%s: TLS config %+v", tc.url, got.TLS)
		}
		got.TLS = nil
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.url, got, tc.want)
		}
	}
}

func TestParseURLRefuses(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"http://r:6379", "the scheme must be redis:// or rediss://"},
		{"redis://:6379", "no host"},
		{"redis://r:6379/x", `the path must be a database number, got "/x"`},
		{"redis://r:6379/-1", "the path must be a database number"},
		{"redis://r:6379/0?dial_timeout=1s", "query parameters and fragments are not supported"},
		{"redis://:secret@r:port", "resp: bad URL: invalid port"},
		{"redis://:secret@r:6379/x", "redis://:xxxxx@r:6379/x"},
	} {
		_, err := resp.ParseURL(tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.url, err, tc.want)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error names the password: %v", tc.url, err)
		}
	}
}

// TestTLS runs a command through rediss:// against a TLS listener that
// answers like Redis.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		// AUTH pw, then PING: arrays of bulk strings, 4 and 2 lines each.
		for _, lines := range []int{5, 3} {
			for range lines {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
			}
			_, _ = c.Write([]byte("+OK\r\n"))
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	opt, err := resp.ParseURL("rediss://:pw@localhost:" + port)
	if err != nil {
		t.Fatal(err)
	}
	opt.TLS.RootCAs = pool
	c := resp.New(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if v, err := c.Do(ctx, "PING"); err != nil || v != "OK" {
		t.Fatalf("PING over TLS: %#v, %v", v, err)
	}

	// Without the certificate's root the handshake fails, clearly.
	opt.TLS = &tls.Config{ServerName: "localhost"}
	c2 := resp.New(opt)
	defer c2.Close()
	if _, err := c2.Do(ctx, "PING"); err == nil || !strings.Contains(err.Error(), "TLS handshake") {
		t.Errorf("PING to an unknown certificate: %v", err)
	}
}

// selfSigned returns a certificate for localhost and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
