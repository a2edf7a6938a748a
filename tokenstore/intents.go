package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Intent returns the unfinished fetch of cred, if one is known: the
// published token may die as early as its DoomedAt plus WeChat's overlap,
// and a read may wait for the record it will publish. Only an intent for a
// seq above the cached record's counts.
func (c *Cache) Intent(cred string) (Intent, bool) {
	v, ok := c.intents.Load(cred)
	if !ok {
		return Intent{}, false
	}
	in := v.(Intent)
	if r, ok := c.Get(cred); ok && r.Seq >= in.Seq {
		return Intent{}, false
	}
	return in, true
}

// runIntents lists and watches the intents (of CacheConfig.Apps, if set)
// until ctx ends, re-listing after any failure. Every replica follows
// them: an intent is the fenced mark that a fetch is in flight and may
// doom the published token.
func (c *Cache) runIntents(ctx context.Context) {
	prefixes := c.prefixes(c.keys.Intents())
	if len(prefixes) == 0 {
		return
	}
	spelling := 0 // see span
	for ctx.Err() == nil {
		opened, err := c.watchIntents(ctx, prefixes, spelling)
		if ctx.Err() != nil {
			return
		}
		if opened {
			spelling++
		}
		c.log.Debug("intent watch interrupted, re-listing", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// watchIntents lists the intents under prefixes in one transaction (one
// revision; intents are few: one per fetch in flight), then watches each
// prefix, its range spelled the given way (see span), until one watch
// fails or the probe finds the cache's watches stopped (cachebeat.go).
// The watches share a gRPC stream of their own. opened reports whether
// the watches were opened.
func (c *Cache) watchIntents(ctx context.Context, prefixes []string, spelling int) (opened bool, err error) {
	stalled := c.reopened()
	base := c.keys.Intents()
	ops := make([]clientv3.Op, len(prefixes))
	for i, p := range prefixes {
		ops[i] = clientv3.OpGet(p, clientv3.WithPrefix())
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	resp, err := c.c.Txn(lctx).Then(ops...).Commit()
	cancel()
	if err != nil {
		return false, err
	}
	seen := map[string]bool{}
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			if !c.follows(kv.Key, base) {
				continue
			}
			cred := strings.TrimPrefix(string(kv.Key), base)
			var in Intent
			if json.Unmarshal(kv.Value, &in) == nil {
				c.intents.Store(cred, in)
				seen[cred] = true
			}
		}
	}
	c.intents.Range(func(k, _ any) bool {
		if !seen[k.(string)] {
			c.intents.Delete(k)
		}
		return true
	})
	w := clientv3.NewWatcher(c.c)
	defer w.Close()
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	errc := make(chan error, len(prefixes))
	var wg sync.WaitGroup
	for _, p := range prefixes {
		wg.Go(func() { errc <- c.watchIntentPrefix(wctx, w, p, resp.Header.Revision, spelling) })
	}
	select {
	case err = <-errc:
	case <-stalled:
		err = errStalled
	}
	wcancel()
	wg.Wait()
	return true, err
}

func (c *Cache) watchIntentPrefix(ctx context.Context, w clientv3.Watcher, prefix string, rev int64, spelling int) error {
	base := c.keys.Intents()
	opts := append(span(prefix, true, spelling), clientv3.WithRev(rev+1))
	for wr := range w.Watch(ctx, prefix, opts...) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			if !c.follows(ev.Kv.Key, base) {
				continue
			}
			cred := strings.TrimPrefix(string(ev.Kv.Key), base)
			var in Intent
			switch {
			case ev.Type == clientv3.EventTypeDelete:
				c.intents.Delete(cred)
			case json.Unmarshal(ev.Kv.Value, &in) == nil:
				c.intents.Store(cred, in)
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.New("intent watch closed")
}
