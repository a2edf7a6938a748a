//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// replicaStatus is the part of a replica's /v1/status the test needs.
type replicaStatus struct {
	Node        string `json:"node"`
	Leader      string `json:"leader"`
	Ready       bool   `json:"ready"`
	EtcdError   string `json:"etcd_error"`
	Credentials []struct {
		Cred        string    `json:"cred"`
		NextRefresh time.Time `json:"next_refresh"`
	} `json:"credentials"`
}

func (sc *scenario) status(replica string) (replicaStatus, error) {
	var st replicaStatus
	err := getJSON(sc.ctx, sc.rec.slow, sc.base(replica)+"/v1/status", &st)
	return st, err
}

// leader asks the replicas who leads, and returns the first answer from a
// replica that reaches etcd.
func (sc *scenario) leader(among []string) (string, error) {
	var leader string
	err := waitFor(sc.ctx, failover, func() (bool, string) {
		for _, r := range among {
			st, err := sc.status(r)
			if err == nil && st.EtcdError == "" && slices.Contains(among, st.Leader) {
				leader = st.Leader
				return true, ""
			}
		}
		return false, "no replica names a leader"
	})
	return leader, err
}

// waitNewLeader waits until one of among reports a leader other than old,
// and returns it with the time it took.
func (sc *scenario) waitNewLeader(among []string, old string) (string, time.Duration, error) {
	start := time.Now()
	var leader string
	err := waitFor(sc.ctx, failover, func() (bool, string) {
		var seen []string
		for _, r := range among {
			st, err := sc.status(r)
			if err != nil {
				seen = append(seen, r+": "+err.Error())
				continue
			}
			if st.EtcdError == "" && st.Leader != "" && st.Leader != old {
				leader = st.Leader
				return true, ""
			}
			seen = append(seen, fmt.Sprintf("%s: leader %q", r, st.Leader))
		}
		return false, fmt.Sprint(seen)
	})
	if err != nil {
		return "", 0, fmt.Errorf("no new leader: %w", err)
	}
	return leader, time.Since(start), nil
}

// beforeRefresh waits until lead before the next planned refresh of the
// app's token, as the replicas' status shows it, and returns when that
// refresh is due. If the next one is closer than lead, it waits for the
// one after.
func (sc *scenario) beforeRefresh(lead time.Duration) (time.Time, error) {
	for range 3 {
		var next time.Time
		err := waitFor(sc.ctx, failover, func() (bool, string) {
			for _, r := range replicas {
				st, err := sc.status(r)
				if err != nil || st.EtcdError != "" {
					continue
				}
				for _, c := range st.Credentials {
					if c.Cred == app+"/token" && !c.NextRefresh.IsZero() {
						next = c.NextRefresh
						return true, ""
					}
				}
			}
			return false, "no replica shows the next refresh of " + app
		})
		if err != nil {
			return time.Time{}, err
		}
		if wait := time.Until(next.Add(-lead)); wait >= 0 {
			hold(sc.ctx, wait)
			return next, sc.ctx.Err()
		}
		hold(sc.ctx, time.Until(next)+2*time.Second) // let it happen; the next is planned
	}
	return time.Time{}, fmt.Errorf("the next refresh of %s stays closer than %v", app, lead)
}

// waitFor polls cond every 200 ms until it holds, timeout passes or ctx
// ends; the error carries cond's last word.
func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if context.Cause(ctx) == errRunDeadline {
				return fmt.Errorf("%w: %s", errRunDeadline, why)
			}
			return fmt.Errorf("not within %v: %s", timeout, why)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// hold lets the run go on for d (while consumers read), or until ctx ends.
func hold(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func without(list []string, x string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == x })
}

func clock(t time.Time) string { return t.Format("15:04:05.000") }

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		t.Error(err)
	}
}
