package wxcrypt

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Ticket is a component_verify_ticket with the CreateTime of the push that
// carried it. The zero Ticket is "none yet". String hides Value.
type Ticket struct {
	Value      string
	CreateTime time.Time
}

// String shows the CreateTime only.
func (t Ticket) String() string {
	return fmt.Sprintf("wxcrypt.Ticket{CreateTime:%d}", t.CreateTime.Unix())
}

// GoString is String.
func (t Ticket) GoString() string { return t.String() }

// TicketOf returns the ticket an event carries; ok is false for other
// events.
func TicketOf(e Event) (t Ticket, ok bool) {
	if e.InfoType != InfoVerifyTicket || e.ComponentVerifyTicket == "" {
		return Ticket{}, false
	}
	return Ticket{Value: e.ComponentVerifyTicket, CreateTime: e.CreateTime}, true
}

// NewerTicket reports whether incoming should replace stored: it must
// carry a value and be strictly newer by CreateTime. A push replayed or
// delivered late (same or older CreateTime) never replaces the ticket in
// force; neither does a second ticket created in the same second, so that
// every replica that compares the same pair keeps the same one.
func NewerTicket(stored, incoming Ticket) bool {
	if incoming.Value == "" || incoming.CreateTime.IsZero() {
		return false
	}
	return stored.Value == "" || incoming.CreateTime.After(stored.CreateTime)
}

// ErrStale is returned by CheckAge for an event or timestamp outside the
// accepted window.
var ErrStale = errors.New("wxcrypt: message outside the accepted time window")

// CheckAge checks that created (an event's CreateTime, or a push's
// timestamp) is at most maxAge before now and at most maxSkew after it.
// A replay of a captured push keeps its valid signature, so this bounds how
// long one is accepted; for tickets, maxAge is their validity (12 h).
func CheckAge(created, now time.Time, maxAge, maxSkew time.Duration) error {
	switch {
	case created.IsZero():
		return fmt.Errorf("%w: no time", ErrStale)
	case now.Sub(created) > maxAge:
		return fmt.Errorf("%w: %s old, limit %s", ErrStale, now.Sub(created).Truncate(time.Second), maxAge)
	case created.Sub(now) > maxSkew:
		return fmt.Errorf("%w: %s in the future, limit %s", ErrStale, created.Sub(now).Truncate(time.Second), maxSkew)
	}
	return nil
}

// ParseTimestamp parses the timestamp query parameter of a push (Unix
// seconds).
func ParseTimestamp(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > 1<<40 {
		return time.Time{}, fmt.Errorf("%w: timestamp is not Unix seconds", ErrMalformed)
	}
	return time.Unix(n, 0), nil
}
