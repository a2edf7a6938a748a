package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
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

// runIntents lists and watches the intents until ctx ends, re-listing after
// any failure. Every replica follows them: an intent is the fenced mark
// that a fetch is in flight and may doom the published token.
func (c *Cache) runIntents(ctx context.Context) {
	prefix := c.keys.Intents()
	for ctx.Err() == nil {
		err := c.watchIntents(ctx, prefix)
		if ctx.Err() != nil {
			return
		}
		c.log.Debug("intent watch interrupted, re-listing", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *Cache) watchIntents(ctx context.Context, prefix string) error {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	resp, err := c.c.Get(lctx, prefix, clientv3.WithPrefix())
	cancel()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, kv := range resp.Kvs {
		cred := strings.TrimPrefix(string(kv.Key), prefix)
		var in Intent
		if json.Unmarshal(kv.Value, &in) == nil {
			c.intents.Store(cred, in)
			seen[cred] = true
		}
	}
	c.intents.Range(func(k, _ any) bool {
		if !seen[k.(string)] {
			c.intents.Delete(k)
		}
		return true
	})
	wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer wcancel()
	for wr := range c.c.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1)) {
		if err := wr.Err(); err != nil {
			return err
		}
		for _, ev := range wr.Events {
			cred := strings.TrimPrefix(string(ev.Kv.Key), prefix)
			var in Intent
			switch {
			case ev.Type == clientv3.EventTypeDelete:
				c.intents.Delete(cred)
			case json.Unmarshal(ev.Kv.Value, &in) == nil:
				c.intents.Store(cred, in)
			}
		}
	}
	return errors.New("intent watch closed")
}
