package refresher

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// entry is one credential under a scheduler. A credential is either queued
// in the heap (idx >= 0) or being stepped (running), never both, so it has
// at most one step, and one WeChat call, in flight on this node.
type entry struct {
	c   *Cred
	w   worker
	ctx context.Context // the scheduler's, or a delegated credential's own
	// cancel ends ctx when the entry has its own (delegates).
	cancel context.CancelFunc
	t      term
	at     time.Time // when to step it next, while queued
	idx    int       // heap index; -1 while running or gone
	// running is set from the moment the dispatcher takes the entry until
	// its step returned.
	running bool
	// report is the highest report seq relayed since the last step took
	// one; 0 for none.
	report uint64
	// snap is the state read in bulk at the start of a term; the first
	// step uses it instead of reading the credential alone.
	snap *tokenstore.Snapshot
	// next replaces w (and ctx, cancel) once a running step returns: a
	// delegated credential assigned again while its step still ran.
	next *entry
	gone bool // removed: dropped when its step returns
	// again makes a running entry step once more right after its step
	// (see wakeNow).
	again bool
}

// entryHeap orders entries by their next step.
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.idx = -1
	return e
}

// sched runs the steps of many credentials with one timer and at most
// Concurrency steps in flight across the process (the Refresher's
// semaphore): no goroutine waits per credential, so a term over 100,000
// credentials holds a heap entry for each and a goroutine only for the
// steps running.
type sched struct {
	r    *Refresher
	ctx  context.Context
	fail func(error) // ends the term: a step's error other than errNotOwner

	// primed, if set, is called once every entry added with a snapshot
	// has taken its first step; pre counts those still to.
	primed func()
	pre    int

	mu     sync.Mutex
	heap   entryHeap
	byCred map[string]*entry
	wake   chan struct{}
	steps  sync.WaitGroup
}

func newSched(r *Refresher, ctx context.Context, fail func(error)) *sched {
	return &sched{r: r, ctx: ctx, fail: fail, byCred: map[string]*entry{}, wake: make(chan struct{}, 1)}
}

// add queues e to step at e.at. A credential already present (a delegate's
// new assignment) takes e's worker once its current step returned.
func (s *sched) add(e *entry) {
	e.idx = -1
	if e.ctx == nil {
		e.ctx = s.ctx
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.byCred[e.c.Name]; ok {
		if old.cancel != nil {
			old.cancel()
		}
		if old.running {
			old.next = e
			return
		}
		if old.idx >= 0 {
			heap.Remove(&s.heap, old.idx)
		}
	}
	s.byCred[e.c.Name] = e
	if e.snap != nil {
		s.pre++
	}
	heap.Push(&s.heap, e)
	s.poke()
}

// remove stops stepping cred: at once if it is queued, after its step
// returns if one is running.
func (s *sched) remove(cred string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byCred[cred]
	if !ok {
		return
	}
	if e.cancel != nil {
		e.cancel()
	}
	e.next = nil
	if e.running {
		e.gone = true
		return
	}
	if e.idx >= 0 {
		heap.Remove(&s.heap, e.idx)
	}
	delete(s.byCred, cred)
}

// relay hands a report on seq to cred's entry, if this scheduler has it:
// a queued entry steps at once, a running one right after its step.
func (s *sched) relay(cred string, seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byCred[cred]
	if !ok || e.gone {
		return false
	}
	// A report already pending is replaced by the higher seq, so that a
	// stale report never hides the current one.
	e.report = max(e.report, seq)
	if e.idx >= 0 {
		e.at = s.r.cfg.Now()
		heap.Fix(&s.heap, e.idx)
		s.poke()
	}
	return true
}

// has reports whether s steps cred.
func (s *sched) has(cred string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byCred[cred]
	return ok && !e.gone
}

// wakeNow steps cred at once if it is queued, or right after its running
// step: something it depends on changed (a ticket, a code, a state).
func (s *sched) wakeNow(cred string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byCred[cred]
	if !ok || e.gone {
		return
	}
	if e.idx < 0 {
		e.again = true
		return
	}
	e.at = s.r.cfg.Now()
	heap.Fix(&s.heap, e.idx)
	s.poke()
}

func (s *sched) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run dispatches due entries until ctx ends, then waits for the steps in
// flight: each finishes its WeChat call and publishes what it minted.
func (s *sched) run() {
	defer s.steps.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		var due *entry
		wait := time.Hour
		if len(s.heap) > 0 {
			if d := s.heap[0].at.Sub(s.r.cfg.Now()); d > 0 {
				wait = d
			} else {
				due = heap.Pop(&s.heap).(*entry)
				due.running = true
			}
		}
		s.mu.Unlock()
		if due != nil {
			select {
			case s.r.sem <- struct{}{}:
			case <-s.ctx.Done():
				return
			}
			s.steps.Go(func() {
				defer func() { <-s.r.sem }()
				s.runStep(due)
			})
			continue
		}
		timer.Reset(wait)
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// runStep steps e once and queues it again, unless it is gone.
func (s *sched) runStep(e *entry) {
	s.mu.Lock()
	trig := trigger{}
	if e.report != 0 {
		trig, e.report = trigger{report: true, seq: e.report}, 0
	} else {
		trig, e.t.pending = e.t.pending, trigger{}
	}
	snap := e.snap
	e.snap = nil
	s.mu.Unlock()

	next, err := s.r.step(e.ctx, e.w, *e.c, &e.t, trig, snap)

	s.mu.Lock()
	defer s.mu.Unlock()
	if snap != nil {
		if s.pre--; s.pre == 0 && s.primed != nil {
			go s.primed() // not under s.mu: it may collect garbage
		}
	}
	e.running = false
	switch {
	case e.next != nil:
		n := e.next
		e.next = nil
		n.report = max(n.report, e.report)
		s.byCred[e.c.Name] = n
		heap.Push(&s.heap, n)
	case e.gone || errors.Is(err, errNotOwner):
		if e.cancel != nil {
			e.cancel()
		}
		if s.byCred[e.c.Name] == e {
			delete(s.byCred, e.c.Name)
		}
	case err != nil:
		s.fail(err)
	default:
		e.at = next
		if e.report != 0 || e.again {
			e.at, e.again = s.r.cfg.Now(), false
		}
		heap.Push(&s.heap, e)
	}
	s.poke()
}

// register makes s receive the reports that the shared report watch
// relays, until the returned function is called.
func (r *Refresher) register(s *sched) (unregister func()) {
	r.mu.Lock()
	r.scheds[s] = struct{}{}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.scheds, s)
		r.mu.Unlock()
	}
}

// scanAll makes every entry's next step look for a report of its current
// record in etcd: the bulk listing of reports failed.
func (s *sched) scanAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.byCred {
		e.t.scanReports = true
	}
}
