package wechattest

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// UseLatency delays getcallbackip calls (the cheap call that uses a
// token) from some callers, so that one host's check of a token can be
// slowed while others' uses are not. A held call is judged at the end of
// its hold: the token's state then decides the answer.
type UseLatency struct {
	// Latency is how long a matching call is held (real time).
	Latency time.Duration
	// IPs are the callers delayed; empty delays every caller.
	IPs []string
	// Count limits the delay to the next Count matching calls; 0 delays
	// until ClearUseLatency. GET /_sim/use_latency shows what is left.
	Count int
}

// useLatencyJSON is UseLatency on the wire, with Latency as a Go
// duration string.
type useLatencyJSON struct {
	Latency string   `json:"latency,omitempty"`
	IPs     []string `json:"ips,omitempty"`
	Count   int      `json:"count,omitempty"`
}

// MarshalJSON encodes u as {"latency":"12s","ips","count"}, the body of
// POST /_sim/use_latency.
func (u UseLatency) MarshalJSON() ([]byte, error) {
	uj := useLatencyJSON{IPs: u.IPs, Count: u.Count}
	if u.Latency != 0 {
		uj.Latency = u.Latency.String()
	}
	return json.Marshal(uj)
}

// UnmarshalJSON decodes what MarshalJSON writes and rejects bad
// durations, negative counts and entries of IPs that are not addresses.
func (u *UseLatency) UnmarshalJSON(b []byte) error {
	var uj useLatencyJSON
	if err := json.Unmarshal(b, &uj); err != nil {
		return err
	}
	var d time.Duration
	if uj.Latency != "" {
		var err error
		if d, err = time.ParseDuration(uj.Latency); err != nil {
			return fmt.Errorf("use latency: %w", err)
		}
	}
	if d < 0 || uj.Count < 0 {
		return fmt.Errorf("use latency: negative latency or count")
	}
	for _, ip := range uj.IPs {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("use latency: %w", err)
		}
	}
	*u = UseLatency{Latency: d, IPs: uj.IPs, Count: uj.Count}
	return nil
}

// SetUseLatency replaces the getcallbackip delay with u; a zero Latency
// is ClearUseLatency.
func (s *Sim) SetUseLatency(u UseLatency) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.IPs = slices.Clone(u.IPs)
	s.useHold = u
	if u.Latency <= 0 {
		s.useHold = UseLatency{}
		close(s.useGen)
		s.useGen = make(chan struct{})
	}
}

// ClearUseLatency stops delaying getcallbackip; calls held now are judged
// and answered at once.
func (s *Sim) ClearUseLatency() { s.SetUseLatency(UseLatency{}) }

// UseLatencyNow returns the getcallbackip delay in force (zero if none,
// or if its count is used up).
func (s *Sim) UseLatencyNow() UseLatency {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.useHold
	u.IPs = slices.Clone(u.IPs)
	return u
}

// takeUseLatency consumes one application of the delay if it matches
// caller, and returns the channel that ClearUseLatency closes.
func (s *Sim) takeUseLatency(caller string) (time.Duration, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.useHold
	if u.Latency <= 0 {
		return 0, nil, false
	}
	if len(u.IPs) > 0 {
		a, err := netip.ParseAddr(caller)
		if err != nil || !slices.ContainsFunc(u.IPs, func(ip string) bool {
			b, err := netip.ParseAddr(ip)
			return err == nil && b.Unmap() == a.Unmap()
		}) {
			return 0, nil, false
		}
	}
	if u.Count > 0 {
		s.useHold.Count--
		if s.useHold.Count == 0 {
			s.useHold = UseLatency{}
		}
	}
	return u.Latency, s.useGen, true
}
