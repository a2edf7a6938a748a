package refresher

import "context"

// watchReports relays invalidation reports to the schedulers that step
// their credentials until ctx ends. Lead and Delegate both call it; they share one
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
				defer r.mu.Unlock()
				for s := range r.scheds {
					if s.relay(cred, seq) {
						return
					}
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
