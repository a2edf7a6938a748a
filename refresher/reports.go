package refresher

import "context"

// watchReports relays invalidation reports to the credentials' running
// loops until ctx ends. Lead and Delegate both call it; they share one
// watch, which runs while either does, so that a report is relayed once.
func (r *Refresher) watchReports(ctx context.Context) {
	r.mu.Lock()
	r.watchers++
	if r.watchers == 1 {
		wctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		r.stopWatch = func() { cancel(); <-done }
		go func() {
			defer close(done)
			r.cfg.Store.WatchReports(wctx, func(cred string, seq uint64) {
				r.mu.Lock()
				ch := r.reports[cred]
				r.mu.Unlock()
				if ch != nil {
					relay(ch, seq)
				}
			})
		}()
	}
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	r.watchers--
	var stop func()
	if r.watchers == 0 {
		stop, r.stopWatch = r.stopWatch, nil
	}
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// relay hands seq to a loop's one-slot report channel. A report already
// pending is replaced by the higher seq, so that a stale report never
// hides the current one.
func relay(ch chan uint64, seq uint64) {
	for {
		select {
		case ch <- seq:
			return
		default:
		}
		select {
		case old := <-ch:
			seq = max(seq, old)
		default:
		}
	}
}
