package bench

import (
	"fmt"
	"time"

	"github.com/rtmpedge/rtmpedge/cluster/redisproc"
)

// OursClusterKind is OursKind (350 ms merged writes) with the origin
// cluster's stream registry: a redis-server started for the set-up (a free
// port, no persistence, stopped by its PID), the origin claiming the stream
// it is fed and the edge asking the registry before it opens an upstream.
// With registry false it is OursKind itself, the baseline.
func (e Env) OursClusterKind(name string, registry bool) Kind {
	k := e.OursKind(name, 350*time.Millisecond)
	if !registry {
		return k
	}
	k.Start = func(dir string) (string, bool, *ProcWatch, func(), error) {
		r, err := redisproc.Start(dir)
		if err != nil {
			return "", false, nil, nil, err
		}
		withRegistry := e
		withRegistry.OursOriginExtra = fmt.Sprintf("cluster: {registry: %q}\n", r.URL())
		if withRegistry.OursExtra, err = mergeYAML(withRegistry.OursOriginExtra, e.OursExtra); err != nil {
			r.Stop()
			return "", false, nil, nil, err
		}
		url, raw, watch, stop, err := withRegistry.OursKind(name, 350*time.Millisecond).Start(dir)
		if err != nil {
			r.Stop()
			return "", false, nil, nil, err
		}
		return url, raw, watch, func() { stop(); r.Stop() }, nil
	}
	return k
}
