//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// The fleet profile's services: etcd's gRPC proxy and a serve-only sidecar
// that reaches etcd only through it.
var fleetServices = []string{"etcd-proxy", "sidecar"}

// sidecarURL is the host URL of the (first) sidecar, whose host port Docker
// picks.
func (s *stack) sidecarURL(ctx context.Context) (string, error) {
	out, err := s.composeRun(ctx, "port", "sidecar", "8417")
	if err != nil {
		return "", err
	}
	addr := strings.TrimSpace(out)
	if addr == "" || strings.HasSuffix(addr, ":0") {
		return "", fmt.Errorf("sidecar: no host port (%q)", out)
	}
	return "http://" + addr, nil
}

// checkFleet waits until the sidecar behind etcd-proxy serves the token
// the replica at replicaURL serves, at a seq of at least minSeq, and
// returns the sidecar's read.
func (s *stack) checkFleet(ctx context.Context, rec *recorder, replicaURL string, minSeq uint64, timeout time.Duration) (checker.Read, error) {
	sidecar, err := s.sidecarURL(ctx)
	if err != nil {
		return checker.Read{}, err
	}
	var got checker.Read
	err = waitFor(ctx, timeout, func() (bool, string) {
		want := rec.read(ctx, "replica", replicaURL, app)
		got = rec.read(ctx, "sidecar", sidecar, app)
		switch {
		case !got.OK():
			return false, fmt.Sprintf("sidecar: %d %s", got.Status, got.Code)
		case !want.OK():
			return false, fmt.Sprintf("replica: %d %s", want.Status, want.Code)
		case got.Seq < minSeq:
			return false, fmt.Sprintf("sidecar serves seq %d, want at least %d", got.Seq, minSeq)
		case got.Token != want.Token || got.Seq != want.Seq:
			return false, fmt.Sprintf("sidecar serves seq %d, the replica seq %d", got.Seq, want.Seq)
		}
		return true, ""
	})
	if err != nil {
		return checker.Read{}, fmt.Errorf("the sidecar behind etcd-proxy: %w", err)
	}
	return got, nil
}
