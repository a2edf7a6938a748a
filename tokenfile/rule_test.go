package tokenfile

import (
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

func TestDecide(t *testing.T) {
	const margin, overlap = 30 * time.Second, 5 * time.Minute
	t0 := time.Date(2031, 5, 1, 8, 0, 0, 0, time.UTC)
	s, err := New(Config{Source: newFakeSource(), Margin: margin, Overlap: overlap})
	if err != nil {
		t.Fatal(err)
	}
	// Planned refresh + overlap (t0+6m) comes before expiry (t0+2h): the
	// keep-until rule decides on a source cut off from etcd.
	early := tokenstore.Record{Cred: "a/token", Value: "v", Seq: 3, ExpiresAt: t0.Add(2 * time.Hour), RefreshAt: t0.Add(time.Minute)}
	keep := t0.Add(6*time.Minute - margin)
	expiry := t0.Add(2*time.Hour - margin)
	// No planned refresh: kept until expiry.
	plain := tokenstore.Record{Cred: "a/token", Value: "v", Seq: 3, ExpiresAt: t0.Add(time.Hour)}
	const cutOff = "past keep-until, not following etcd"
	tests := []struct {
		name   string
		rec    tokenstore.Record
		found  bool
		now    time.Time
		synced bool
		want   decision
	}{
		{"no record", tokenstore.Record{}, false, t0, true, decision{why: "no record"}},
		{"empty value", tokenstore.Record{ExpiresAt: t0.Add(time.Hour)}, true, t0, true, decision{why: "expired"}},
		{"cut off, before keep-until", early, true, t0, false, decision{serve: true, until: keep}},
		{"cut off, at keep-until", early, true, keep, false, decision{why: cutOff}},
		{"cut off, an hour before expiry", early, true, expiry.Add(-time.Hour), false, decision{why: cutOff}},
		{"synced, before keep-until", early, true, t0, true, decision{serve: true, until: expiry}},
		{"synced, past keep-until", early, true, keep.Add(time.Hour), true, decision{serve: true, until: expiry}},
		{"synced, at expiry less margin", early, true, expiry, true, decision{why: "expired"}},
		{"no refresh planned", plain, true, t0, false, decision{serve: true, until: t0.Add(time.Hour - margin)}},
		{"no refresh planned, in margin", plain, true, t0.Add(time.Hour - margin), false, decision{why: "expired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit, why := s.limit(tt.rec, tt.synced)
			if got := decide(tt.rec, tt.found, tt.now, margin, limit, why); got != tt.want {
				t.Errorf("decide: got %+v, want %+v", got, tt.want)
			}
		})
	}
}
