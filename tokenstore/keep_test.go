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
