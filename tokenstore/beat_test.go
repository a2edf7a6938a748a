package tokenstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/internal/etcdtest"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestBeatFenced: a beat of a term that is over is refused.
func TestBeatFenced(t *testing.T) {
	clus := etcdtest.NewCluster(t, 1)
	c := clus.Client(0)
	s := tokenstore.New(c, "/w")
	g := leaderKey(t, c, s.Keys().Election()+"/a")
	rev, err := s.Beat(ctx(t), g, tokenstore.Beat{Node: "a", At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := c.Get(ctx(t), s.Keys().Beat()); err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].ModRevision != rev {
		t.Fatalf("beat key after Beat: %v, %v; want mod revision %d", resp, err, rev)
	}
	if _, err := c.Delete(ctx(t), g.Key()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Beat(ctx(t), g, tokenstore.Beat{Node: "a", At: time.Now()}); !errors.Is(err, tokenstore.ErrFenced) {
		t.Errorf("beat after the term: %v, want ErrFenced", err)
	}
}
