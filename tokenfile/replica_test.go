package tokenfile_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/client"
	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/internal/replicatest"
)

// TestSinkAgainstReplica: a replica keeps an app's token_file current while
// the token changes many times; a reader loop only ever sees whole tokens
// that WeChat issued.
func TestSinkAgainstReplica(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.token")
	env := replicatest.Start(t, replicatest.Options{Edit: func(c *config.Config) {
		c.Apps[0].TokenFile = path
		c.ReportLimit = config.ReportLimit{PerClient: 100, PerCredential: 100} // a report a change: more than the defaults allow
	}})
	c, err := client.New(client.Config{BaseURL: env.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	waitFile(t, path, env.Current(t, replicatest.App, "token").Value)

	stop := make(chan struct{})
	seen := map[string]bool{}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("read: %v", err)
				return
			}
			seen[string(b)] = true
		}
	})
	// Stop the reader before the test's directory goes, also on failure.
	stopReader := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopReader()
	const changes = 15
	for range changes {
		cur := env.Current(t, replicatest.App, "token").Value
		env.KillToken(t, replicatest.App)
		if _, err := c.Invalidate(ctx, replicatest.App, cur); err != nil {
			t.Fatalf("Invalidate: %v", err)
		}
	}
	stopReader()
	waitFile(t, path, env.Current(t, replicatest.App, "token").Value)

	issued := map[string]bool{}
	for _, f := range env.Sim.Ledger() {
		issued[f.Token] = f.Issued
	}
	for v := range seen {
		if !issued[v] {
			t.Errorf("the reader saw %.40q (%d bytes), not a token WeChat issued", v, len(v))
		}
	}
	if len(seen) < 2 {
		t.Errorf("distinct tokens seen: got %d, want several", len(seen))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode: got %o, want 640", fi.Mode().Perm())
	}
}

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
