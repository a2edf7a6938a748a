package wechattest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Refusal makes WeChat refuse one credential's token calls from some
// callers, as it does when the appid's (or WeCom application's) IP
// whitelist lacks the caller's address: classic and stable calls answer
// 40164, WeCom gettoken 60020. Ticket calls, getcallbackip and other
// credentials are not touched. A refused call is in the ledger with its
// errcode.
type Refusal struct {
	// AppID is the appid or corpid refused; required.
	AppID string
	// IPs are the caller addresses refused; empty refuses every caller.
	IPs []string
	// Until is the simulator-clock instant the refusal ends; zero keeps it
	// until ClearRefusals.
	Until time.Time
}

// refusalJSON is a Refusal on the wire: POST /_sim/refuse takes "for", a
// Go duration ("40s", "" for until cleared); GET answers "until" too.
type refusalJSON struct {
	AppID string     `json:"appid"`
	IPs   []string   `json:"ips,omitempty"`
	For   string     `json:"for,omitempty"`
	Until *time.Time `json:"until,omitempty"`
}

// refusal is a Refusal as the simulator keeps it.
type refusal struct {
	Refusal
	ips []netip.Addr
}

// Refuse refuses appID's token calls from ips (every caller if empty) for
// d of simulator time, or until ClearRefusals if d is 0. It replaces any
// refusal of appID in force. An entry of ips that is not an address is an
// error, and nothing changes.
func (s *Sim) Refuse(appID string, ips []string, d time.Duration) error {
	if appID == "" {
		return fmt.Errorf("refuse: no appid")
	}
	if d < 0 {
		return fmt.Errorf("refuse: negative duration %v", d)
	}
	r := refusal{Refusal: Refusal{AppID: appID, IPs: slices.Clone(ips)}}
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("refuse: %w", err)
		}
		r.ips = append(r.ips, a.Unmap())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d > 0 {
		r.Until = s.now().Add(d)
	}
	if s.refusals == nil {
		s.refusals = map[string]refusal{}
	}
	s.refusals[appID] = r
	return nil
}

// ClearRefusals ends the refusal of appID, or every refusal if appID is "".
func (s *Sim) ClearRefusals(appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if appID == "" {
		clear(s.refusals)
		return
	}
	delete(s.refusals, appID)
}

// Refusals returns the refusals in force, by appid.
func (s *Sim) Refusals() []Refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []Refusal
	for _, r := range s.refusals {
		if r.Until.IsZero() || now.Before(r.Until) {
			r.IPs = slices.Clone(r.IPs)
			out = append(out, r.Refusal)
		}
	}
	slices.SortFunc(out, func(a, b Refusal) int { return cmp.Compare(a.AppID, b.AppID) })
	return out
}

// refusedLocked reports whether a token call for appID from caller is
// refused at now.
func (s *Sim) refusedLocked(appID, caller string, now time.Time) bool {
	r, ok := s.refusals[appID]
	if !ok || (!r.Until.IsZero() && !now.Before(r.Until)) {
		return false
	}
	if len(r.ips) == 0 {
		return true
	}
	a, err := netip.ParseAddr(caller)
	return err == nil && slices.Contains(r.ips, a.Unmap())
}

// MarshalJSON encodes r as {"appid","ips","until"}.
func (r Refusal) MarshalJSON() ([]byte, error) {
	rj := refusalJSON{AppID: r.AppID, IPs: r.IPs}
	if !r.Until.IsZero() {
		rj.Until = &r.Until
	}
	return json.Marshal(rj)
}
