package tokenstore

import (
	"context"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/internal/etcdtest"
)

// TestSpanSpellsTheSameKeys: every spelling of a watched range covers the
// same keys as the plain one, in etcd itself, and no two are spelled
// alike (a proxy must see a different range).
func TestSpanSpellsTheSameKeys(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k := Keys{Prefix: "/w"}
	for _, key := range []string{k.Beat(), k.Beat() + "x", k.Prefix + "/bea", k.Cred("a/token"), k.Cred("a/jsapi"),
		k.Cred("ab/token"), k.Cred("商城/token"), k.Creds() + "~", k.Prefix + "/cred0", k.Intent("a/token")} {
		if _, err := c.Put(ctx, key, "v"); err != nil {
			t.Fatal(err)
		}
	}
	keys := func(key string, opts []clientv3.OpOption) []string {
		resp, err := c.Get(ctx, key, append(opts, clientv3.WithKeysOnly())...)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, kv := range resp.Kvs {
			out = append(out, string(kv.Key))
		}
		return out
	}
	for _, tc := range []struct {
		key    string
		prefix bool
	}{{k.Beat(), false}, {k.Creds(), true}, {k.Creds() + "a/", true}, {k.Intents(), true}} {
		end := func(n int) string { return string(clientv3.OpGet(tc.key, span(tc.key, tc.prefix, n)...).RangeBytes()) }
		want := keys(tc.key, span(tc.key, tc.prefix, 0))
		seen := map[string]bool{}
		for n := range spellings {
			end := end(n)
			if seen[end] {
				t.Errorf("%s: spelling %d repeats range end %q", tc.key, n, end)
			}
			seen[end] = true
			if got := keys(tc.key, span(tc.key, tc.prefix, n)); !slices.Equal(got, want) {
				t.Errorf("%s spelled %d: keys %q, want %q", tc.key, n, got, want)
			}
		}
		if end(spellings) != end(0) {
			t.Errorf("%s: spelling %d is not spelling 0 again", tc.key, spellings)
		}
	}
}
