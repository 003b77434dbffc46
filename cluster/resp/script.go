package resp

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"strconv"
)

// Script is a Lua script, run by its SHA1 digest once the server has it.
type Script struct {
	src, sha string
}

// NewScript returns the script src.
func NewScript(src string) *Script {
	sum := sha1.Sum([]byte(src))
	return &Script{src: src, sha: hex.EncodeToString(sum[:])}
}

// Run runs the script with EVALSHA, and with EVAL when the server does
// not have it (NOSCRIPT: it restarted, or its script cache was flushed).
// The reply is as Do returns it.
func (s *Script) Run(ctx context.Context, c *Client, keys []string, args ...string) (any, error) {
	v, err := c.Do(ctx, s.command("EVALSHA", s.sha, keys, args)...)
	if e := (*Error)(nil); errors.As(err, &e) && e.Code() == "NOSCRIPT" {
		return c.Do(ctx, s.Eval(keys, args...)...)
	}
	return v, err
}

// Eval returns the EVAL command of the script, for a pipeline (where a
// NOSCRIPT reply could not be retried in the same round trip).
func (s *Script) Eval(keys []string, args ...string) []string {
	return s.command("EVAL", s.src, keys, args)
}

func (s *Script) command(verb, script string, keys, args []string) []string {
	cmd := make([]string, 0, 3+len(keys)+len(args))
	cmd = append(cmd, verb, script, strconv.Itoa(len(keys)))
	cmd = append(cmd, keys...)
	return append(cmd, args...)
}
