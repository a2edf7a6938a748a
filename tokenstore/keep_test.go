package tokenstore_test

import (
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

func TestKeepUntil(t *testing.T) {
	const overlap = 5 * time.Minute
	t0 := time.Date(2031, 5, 1, 8, 0, 0, 0, time.UTC)
	exp := t0.Add(2 * time.Hour)
	tests := []struct {
		name      string
		refreshAt time.Time
		want      time.Time
	}{
		{"no planned refresh", time.Time{}, exp},
		{"refresh plus overlap before expiry", t0.Add(time.Hour), t0.Add(time.Hour + overlap)},
		{"refresh plus overlap after expiry", exp.Add(-time.Minute), exp},
		{"refresh plus overlap at expiry", exp.Add(-overlap), exp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tokenstore.Record{ExpiresAt: exp, RefreshAt: tt.refreshAt}
			if got := r.KeepUntil(overlap); !got.Equal(tt.want) {
				t.Errorf("KeepUntil: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDoomedAt(t *testing.T) {
	const overlap = 5 * time.Minute
	t0 := time.Date(2031, 5, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   tokenstore.Intent
		want time.Time
	}{
		{"a call alone: one overlap after it", tokenstore.Intent{Started: t0, Since: t0}, t0.Add(overlap)},
		{"after an unfinished call: at its own start", tokenstore.Intent{Started: t0.Add(time.Minute), Since: t0}, t0.Add(time.Minute)},
		{"after an unfinished call, held: at its call", tokenstore.Intent{Started: t0.Add(time.Minute), Since: t0, CallAt: t0.Add(time.Minute + 2*time.Second)},
			t0.Add(time.Minute + 2*time.Second)},
		{"held past the unfinished call's overlap: at that overlap's end", tokenstore.Intent{Started: t0.Add(overlap - time.Second), Since: t0, CallAt: t0.Add(overlap + time.Second)},
			t0.Add(overlap)},
		{"after an unfinished call whose overlap ended", tokenstore.Intent{Started: t0.Add(overlap + time.Minute), Since: t0}, t0.Add(overlap)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.DoomedAt(overlap); !got.Equal(tt.want) {
				t.Errorf("DoomedAt: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAliveUntil(t *testing.T) {
	const overlap = 5 * time.Minute
	t0 := time.Date(2031, 5, 1, 8, 0, 0, 0, time.UTC)
	rec := tokenstore.Record{FetchedAt: t0, ExpiresAt: t0.Add(2 * time.Hour), RefreshAt: t0.Add(time.Hour + 50*time.Minute)}
	keep := rec.KeepUntil(overlap)
	held := tokenstore.Intent{Started: t0.Add(time.Hour), Since: t0.Add(time.Hour - time.Minute), CallAt: t0.Add(time.Hour + 2*time.Second)}
	tests := []struct {
		name          string
		known, synced bool
		want          time.Time
	}{
		{"following etcd, no fetch in flight: its expiry", false, true, rec.ExpiresAt},
		{"following etcd, a held fetch in flight: its call", true, true, held.CallAt},
		{"cut off, no fetch known: its keep-until", false, false, keep},
		{"cut off, a fetch known from before: its doom, not the keep-until", true, false, held.CallAt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tokenstore.AliveUntil(rec, held, tt.known, tt.synced, overlap); !got.Equal(tt.want) {
				t.Errorf("AliveUntil: got %v, want %v", got, tt.want)
			}
		})
	}
}
