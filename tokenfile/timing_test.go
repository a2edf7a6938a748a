package tokenfile

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// clock is an injected clock far from the real one that advances with
// it, so that the Sink's timers fire in real time.
func clock() func() time.Time {
	base, start := time.Date(2031, 5, 1, 8, 0, 0, 0, time.UTC), time.Now()
	return func() time.Time { return base.Add(time.Since(start)) }
}

// logBuf collects a Sink's log lines.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// checkLogs fails unless the logs say want and name none of the secrets.
func checkLogs(t *testing.T, logs *logBuf, want string, secrets ...string) {
	t.Helper()
	out := logs.String()
	if !strings.Contains(out, want) {
		t.Errorf("logs: no %q in\n%s", want, out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("logs name a token value %.20q:\n%s", s, out)
		}
	}
}

// waitEmptied waits until path is empty and checks that the Sink did not
// take the token back before deadline on its clock.
func waitEmptied(t *testing.T, path string, now func() time.Time, deadline time.Time) {
	t.Helper()
	waitFile(t, path, "")
	if got := now(); got.Before(deadline) {
		t.Errorf("%s emptied by %v, before %v", path, got, deadline)
	}
}

// TestSinkEmptiesExpired: a file holding a token that is not usable, or
// holding anything while no record exists, is emptied at start; a written
// token is taken back at its expiry less the margin with no change in the
// cache; a new record is written again.
func TestSinkEmptiesExpired(t *testing.T) {
	const margin = time.Minute
	dir := t.TempDir()
	shop, mini := filepath.Join(dir, "shop.token"), filepath.Join(dir, "mini.token")
	for _, p := range []string{shop, mini} {
		if err := Write(p, []byte("left-by-an-earlier-run")); err != nil {
			t.Fatal(err)
		}
	}
	now := clock()
	src := newFakeSource()
	src.Put(record("shop/token", 1, now().Add(-time.Minute)))
	logs := new(logBuf)
	// No polling: only the timer at the record's end can take it back.
	runSink(t, Config{Source: src, Files: []File{{Cred: "shop/token", Path: shop}, {Cred: "mini/token", Path: mini}},
		Margin: margin, SyncInterval: time.Hour, Logger: logs.logger(), Now: now})

	waitFile(t, shop, "") // expired record
	waitFile(t, mini, "") // no record
	for _, p := range []string{shop, mini} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != Mode {
			t.Errorf("%s: %v, %v; want an empty file of mode %o", p, fi, err, Mode)
		}
	}

	deadline := now().Add(400 * time.Millisecond)
	src.Put(record("shop/token", 2, deadline.Add(margin)))
	waitFile(t, shop, value(2))
	waitEmptied(t, shop, now, deadline)

	src.Put(record("shop/token", 3, now().Add(time.Hour)))
	waitFile(t, shop, value(3))
	checkLogs(t, logs, "emptied token file", value(1), value(2), value(3))
}

// TestSinkKeepUntilCutOff: on a source that does not follow etcd, a file
// is emptied at its record's planned refresh plus overlap less the margin,
// long before its expiry, with no change in the cache; it holds the token
// again while the source follows etcd (as the API serves it), and a new
// record is written.
func TestSinkKeepUntilCutOff(t *testing.T) {
	const margin, overlap = 30 * time.Second, 5 * time.Minute
	path := filepath.Join(t.TempDir(), "shop.token")
	now := clock()
	src := newFakeSource()
	src.synced.Store(false)
	deadline := now().Add(400 * time.Millisecond)
	rec := record("shop/token", 1, now().Add(2*time.Hour))
	rec.RefreshAt = deadline.Add(margin - overlap) // keep-until less margin = deadline
	src.Put(rec)
	logs := new(logBuf)
	runSink(t, Config{Source: src, Files: []File{{Cred: "shop/token", Path: path}}, Margin: margin, Overlap: overlap,
		SyncInterval: 10 * time.Millisecond, Logger: logs.logger(), Now: now})

	waitFile(t, path, value(1))
	waitEmptied(t, path, now, deadline)

	src.synced.Store(true)
	waitFile(t, path, value(1))
	src.synced.Store(false)
	waitFile(t, path, "")

	next := record("shop/token", 2, now().Add(2*time.Hour))
	next.RefreshAt = now().Add(time.Hour)
	src.Put(next)
	waitFile(t, path, value(2))
	checkLogs(t, logs, "past keep-until, not following etcd", value(1), value(2))
}

// TestSinkFetchInFlight: on a source that follows etcd, a fetch in flight
// (an intent, which changes no record) takes the file back at the earliest
// death it may cause, less the margin; the record it publishes is written.
func TestSinkFetchInFlight(t *testing.T) {
	const margin, overlap = 30 * time.Second, 5 * time.Minute
	path := filepath.Join(t.TempDir(), "shop.token")
	now := clock()
	src := newFakeSource()
	src.Put(record("shop/token", 1, now().Add(2*time.Hour)))
	runSink(t, Config{Source: src, Files: []File{{Cred: "shop/token", Path: path}}, Margin: margin, Overlap: overlap,
		SyncInterval: 10 * time.Millisecond, Now: now})
	waitFile(t, path, value(1))

	deadline := now().Add(400 * time.Millisecond)
	src.SetIntent("shop/token", tokenstore.Intent{Seq: 2, Started: deadline.Add(margin - overlap)})
	waitEmptied(t, path, now, deadline)
	src.Put(record("shop/token", 2, now().Add(2*time.Hour)))
	waitFile(t, path, value(2))
}
