package bench

import (
	"fmt"
	"slices"
	"time"
)

// edgeHTTPAddr is the address the set-up's edge serves HTTP-FLV and
// WebSocket-FLV on.
func (e Env) edgeHTTPAddr() string { return e.edgeListen(e.HTTPPort) }

// OursFLVKind is OursKind with the edge serving HTTP-FLV on the env's HTTP
// port, its players playing FLV over HTTP (scheme "http") or WebSocket
// ("ws") from there.
func (e Env) OursFLVKind(name string, merged time.Duration, scheme string) Kind {
	extra, err := mergeYAML(fmt.Sprintf("http: {listen: [%q]}\n", e.edgeHTTPAddr()), e.OursExtra)
	if err != nil {
		return Kind{Name: name, Start: func(string) (string, bool, *ProcWatch, func(), error) { return "", false, nil, nil, err }}
	}
	withHTTP := e
	withHTTP.OursExtra = extra
	return e.flvKind(withHTTP.OursKind(name, merged), scheme)
}

// flvKind is k with its players playing FLV over HTTP or WebSocket (scheme
// "http" or "ws") on the env's HTTP port instead of RTMP on its edge port:
// the same stream, from the same edge.
func (e Env) flvKind(k Kind, scheme string) Kind {
	start := k.Start
	k.Ports = append(slices.Clone(k.Ports), e.HTTPPort)
	k.Start = func(dir string) (string, bool, *ProcWatch, func(), error) {
		url, raw, watch, stop, err := start(dir)
		if err != nil {
			return "", false, nil, nil, err
		}
		addr := e.edgeHTTPAddr()
		if err := e.waitPort(addr, 10*time.Second); err != nil {
			stop()
			return "", false, nil, nil, err
		}
		_, _, app, stream, err := URL(url)
		if err != nil {
			stop()
			return "", false, nil, nil, err
		}
		return fmt.Sprintf("%s://%s/%s/%s.flv", scheme, addr, app, stream), raw, watch, stop, nil
	}
	return k
}
