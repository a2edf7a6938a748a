package replica

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/election"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// lead is what the elector runs for each term: the refresh loop, and
// beside it, for as long as the term lasts, the heartbeat that lets every
// replica's cache tell a live watch from one that stopped without an
// error (tokenstore/cachebeat.go).
func (r *Replica) lead(ctx context.Context, g *election.Guard) error {
	bctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.beat(bctx, g, tokenstore.DefaultProbeInterval) })
	defer wg.Wait()
	defer cancel()
	return r.refr.Lead(ctx, g)
}

// beat writes the heartbeat, fenced by g, every interval (the caches'
// probe interval) until ctx ends. A refused write means the term is over:
// the elector is about to end ctx.
func (r *Replica) beat(ctx context.Context, g *election.Guard, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		bctx, cancel := context.WithTimeout(ctx, interval)
		_, err := r.store.Beat(bctx, g, tokenstore.Beat{Node: r.cfg.Node, At: r.now()})
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, tokenstore.ErrFenced):
			r.log.Debug("heartbeat refused: the term is over", "err", err)
		case err != nil:
			r.log.Warn("heartbeat not written", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
