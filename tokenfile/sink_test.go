package tokenfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// fakeSource is a cache fed by Put.
type fakeSource struct {
	mu      sync.Mutex
	recs    map[string]tokenstore.Record
	intents map[string]tokenstore.Intent
	ch      chan struct{}
	synced  atomic.Bool
}

var _ Source = (*fakeSource)(nil)

// newFakeSource returns a synced, empty source.
func newFakeSource() *fakeSource {
	f := &fakeSource{recs: map[string]tokenstore.Record{}, intents: map[string]tokenstore.Intent{}, ch: make(chan struct{})}
	f.synced.Store(true)
	return f
}

func (f *fakeSource) Synced() bool { return f.synced.Load() }

func (f *fakeSource) Intent(cred string) (tokenstore.Intent, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.intents[cred]
	if r, found := f.recs[cred]; !ok || found && r.Seq >= in.Seq {
		return tokenstore.Intent{}, false // published: as tokenstore.Cache
	}
	return in, true
}

// SetIntent sets cred's fetch in flight, as an intent does: with no change
// of records.
func (f *fakeSource) SetIntent(cred string, in tokenstore.Intent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.intents[cred] = in
}

func (f *fakeSource) Get(cred string) (tokenstore.Record, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.recs[cred]
	return r, ok
}

func (f *fakeSource) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ch
}

func (f *fakeSource) Put(r tokenstore.Record) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recs[r.Cred] = r
	close(f.ch)
	f.ch = make(chan struct{})
}

// value is a token whose length varies with seq, so that a partial or
// mixed file cannot pass for a whole value.
func value(seq int) string {
	return fmt.Sprintf("tok%d-%s-end", seq, strings.Repeat("x", (seq*37)%500))
}

func record(cred string, seq int, exp time.Time) tokenstore.Record {
	return tokenstore.Record{Cred: cred, Value: value(seq), Seq: uint64(seq), ExpiresAt: exp}
}

// waitFile waits until path holds want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := os.ReadFile(path)
		if err == nil && string(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: got %.40q (err %v), want %.40q", path, got, err, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func runSink(t *testing.T, cfg Config) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestSinkFollowsChanges(t *testing.T) {
	dir := t.TempDir()
	src := newFakeSource()
	exp := time.Now().Add(time.Hour)
	src.Put(record("shop/token", 1, exp))
	shop, mini := filepath.Join(dir, "shop.token"), filepath.Join(dir, "mini.token")
	runSink(t, Config{Source: src, Files: []File{{Cred: "shop/token", Path: shop}, {Cred: "mini/token", Path: mini, Mode: 0o600}}, Margin: time.Minute})

	waitFile(t, shop, value(1))
	for seq := 2; seq <= 20; seq++ {
		src.Put(record("shop/token", seq, exp))
		waitFile(t, shop, value(seq))
	}
	src.Put(record("mini/token", 7, exp))
	waitFile(t, mini, value(7))
	// An older record (a lagging replica) or one about to expire is not
	// written.
	src.Put(record("shop/token", 3, exp))
	src.Put(record("mini/token", 8, time.Now().Add(30*time.Second)))
	src.Put(record("mini/token", 9, exp))
	waitFile(t, mini, value(9))
	waitFile(t, shop, value(20))

	for p, want := range map[string]os.FileMode{shop: Mode, mini: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode: got %o, want %o", p, got, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files in the directory: got %q, want the two token files only", names)
	}
}

func TestSinkRetriesFailedWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	src := newFakeSource()
	src.Put(record("shop/token", 1, time.Now().Add(time.Hour)))
	path := filepath.Join(dir, "shop.token")
	logs := new(logBuf)
	runSink(t, Config{Source: src, Files: []File{{Cred: "shop/token", Path: path}}, RetryInterval: 5 * time.Millisecond, Logger: logs.logger()})
	waitFor(t, "a logged write failure", func() bool { return strings.Contains(logs.String(), "write token file") })
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	waitFile(t, path, value(1))
	waitFor(t, "a logged write", func() bool { return strings.Contains(logs.String(), "wrote token file") })
	checkLogs(t, logs, "wrote token file", value(1))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriteIsAtomic: while the file is replaced many times with values of
// many lengths, a reader only ever sees one whole value.
func TestWriteIsAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	const writes = 300
	whole := map[string]bool{}
	for seq := range writes {
		whole[value(seq)] = true
	}
	if err := Write(path, []byte(value(0))); err != nil {
		t.Fatalf("Write: %v", err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads int
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			if !whole[string(got)] {
				t.Errorf("read a partial or mixed file: %.60q (%d bytes)", got, len(got))
				return
			}
			reads++
		}
	})
	for seq := 1; seq < writes; seq++ {
		if err := Write(path, []byte(value(seq))); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	if reads == 0 {
		t.Errorf("reads: got 0, want some")
	}
	if got, _ := os.ReadFile(path); string(got) != value(writes-1) {
		t.Errorf("final content: got %.40q, want %.40q", got, value(writes-1))
	}
}

func TestWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "adir")
	if err := os.Mkdir(target, 0o750); err != nil {
		t.Fatal(err)
	}
	// Renaming a file over a directory fails.
	if err := Write(target, []byte("x")); err == nil {
		t.Fatal("Write over a directory: got nil error, want one")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("entries after a failed write: got %d, want 1 (no temp file)", len(entries))
	}
}

func TestNewRejects(t *testing.T) {
	src := newFakeSource()
	tests := []Config{
		{},
		{Source: src, Files: []File{{Cred: "a/token"}}},
		{Source: src, Files: []File{{Cred: "a/token", Path: "/tmp/x"}, {Cred: "b/token", Path: "/tmp/./x"}}},
	}
	for i, cfg := range tests {
		if _, err := New(cfg); err == nil {
			t.Errorf("case %d: New: got nil error, want one", i)
		}
	}
}
