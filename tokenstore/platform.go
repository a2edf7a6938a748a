package tokenstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/wxcrypt"
)

// What the authorization-event URL of a WeChat Open Platform third-party
// platform receives, written by any replica (WeChat pushes to whichever
// one its URL reaches), under one prefix of its own so that a serve-only
// replica's etcd role may write these and nothing of the leader's:
//
//	P/platform-events/<name>/ticket                      the component_verify_ticket in force
//	P/platform-events/<name>/code/<authorizer>/<digest>  an authorization code not yet exchanged
//	P/platform-events/<name>/authorizer/<authorizer>     the authorizer's state (authorized or not)
//
// Tickets and codes are secrets: their values are sealed with the record
// sealing (the etcd key, and for a ticket its CreateTime, as associated
// data), and a code's key holds a digest of the code, never the code.
// Authorizer states hold no secret and are plain JSON.

// ErrNoSealing is returned by the platform writes of a Store without a
// Sealer: platform secrets are never stored in the clear.
var ErrNoSealing = errors.New("tokenstore: platform values need encryption (a Sealer)")

// PlatformEvents is the prefix of what the platforms' event URLs store.
func (k Keys) PlatformEvents() string { return k.Prefix + "/platform-events/" }

// Platform is the prefix of one platform's event keys.
func (k Keys) Platform(name string) string { return k.PlatformEvents() + name + "/" }

// PlatformTicket is the key of a platform's component_verify_ticket.
func (k Keys) PlatformTicket(name string) string { return k.Platform(name) + "ticket" }

// PlatformCodes is the prefix of a platform's authorization codes.
func (k Keys) PlatformCodes(name string) string { return k.Platform(name) + "code/" }

// PlatformCode is the key of an authorization code: the authorizer and a
// digest of the code, so that the key shows no secret.
func (k Keys) PlatformCode(name, authorizer, code string) string {
	sum := sha256.Sum256([]byte(code))
	return k.PlatformCodes(name) + authorizer + "/" + hex.EncodeToString(sum[:16])
}

// PlatformAuthorizer is the key of an authorizer's state.
func (k Keys) PlatformAuthorizer(name, authorizer string) string {
	return k.Platform(name) + "authorizer/" + authorizer
}

// ValidAuthorizer reports whether appID may name an authorizer in a key:
// 1 to 64 letters, digits, "_" or "-" (WeChat's appids are "wx" and 16 hex
// digits).
func ValidAuthorizer(appID string) bool {
	if appID == "" || len(appID) > 64 {
		return false
	}
	for _, r := range appID {
		if !(r == '_' || r == '-' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return false
		}
	}
	return true
}

// storedTicket is a ticket's etcd value. CreateTime stays outside the
// seal, so that every replica compares tickets the same way even if its
// key ring cannot open the stored one, and is bound into the seal's
// associated data, so that changing it makes the ticket unreadable.
type storedTicket struct {
	CreateTime int64  `json:"create_time"`
	Sealed     []byte `json:"sealed"`
}

// ticketAD is the associated data of a ticket's seal.
func ticketAD(key string, created int64) []byte {
	return []byte(key + "\x00" + strconv.FormatInt(created, 10))
}

// TicketSkew is how far in the future a stored ticket's CreateTime may be
// and still hold against newer pushes; beyond it (a forged or damaged
// value, a clock error) the next push replaces it.
const TicketSkew = 5 * time.Minute

// PutTicket stores t as platform's component_verify_ticket if it is newer
// than the one in force (wxcrypt.NewerTicket: a strictly later
// CreateTime), by compare-and-swap: any number of replicas may call it at
// once, and the newest ticket stays. stored is false when the ticket in
// force is as new or newer; current is then its CreateTime. now is the
// replica's clock, to judge a stored CreateTime in the future.
func (s *Store) PutTicket(ctx context.Context, platform string, t wxcrypt.Ticket, now time.Time) (stored bool, current time.Time, err error) {
	sl := s.codec.sealing.Sealer
	if sl == nil {
		return false, time.Time{}, ErrNoSealing
	}
	if t.Value == "" || t.CreateTime.IsZero() {
		return false, time.Time{}, errors.New("tokenstore: empty ticket")
	}
	key := s.keys.PlatformTicket(platform)
	created := t.CreateTime.Unix()
	sealed, err := sl.Seal([]byte(t.Value), ticketAD(key, created))
	if err != nil {
		return false, time.Time{}, fmt.Errorf("seal ticket of %s: %w", platform, err)
	}
	val, err := json.Marshal(storedTicket{CreateTime: created, Sealed: sealed})
	if err != nil {
		return false, time.Time{}, err
	}
	var standing time.Time
	put, err := s.putIfNewer(ctx, key, string(val), func(cur []byte) bool {
		var c storedTicket
		// A value that does not decode, or dated beyond the skew, is
		// replaced: it is not a ticket this cluster stored.
		if json.Unmarshal(cur, &c) != nil || c.CreateTime <= 0 || !time.Unix(c.CreateTime, 0).Before(now.Add(TicketSkew)) {
			return false
		}
		// The stored value stands in for the ticket in force; only its
		// time matters to NewerTicket.
		in := wxcrypt.Ticket{Value: "stored", CreateTime: time.Unix(c.CreateTime, 0)}
		standing = in.CreateTime
		return !wxcrypt.NewerTicket(in, t)
	})
	switch {
	case err != nil:
		return false, time.Time{}, fmt.Errorf("store ticket of %s: %w", platform, err)
	case !put:
		return false, standing, nil
	}
	return true, t.CreateTime, nil
}

// putIfNewer puts val at key by compare-and-swap unless stands says the
// value there (if any) stays: it reads the key, asks stands, and puts only
// if the key has not changed since; another writer's change is judged
// again. stored reports whether val was put.
func (s *Store) putIfNewer(ctx context.Context, key, val string, stands func(cur []byte) bool) (stored bool, err error) {
	resp, err := s.c.Get(ctx, key)
	if err != nil {
		return false, err
	}
	kvs := resp.Kvs
	for {
		rev := int64(0)
		if len(kvs) > 0 {
			rev = kvs[0].ModRevision
			if stands(kvs[0].Value) {
				return false, nil
			}
		}
		txn, err := s.c.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, val)).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return false, err
		}
		if txn.Succeeded {
			return true, nil
		}
		kvs = txn.Responses[0].GetResponseRange().Kvs // another replica wrote first: judge again
	}
}

// Ticket returns platform's ticket in force; ok is false if there is
// none. An error wrapping ErrRecordUnreadable means one is stored but does
// not open (another key, forged or damaged).
func (s *Store) Ticket(ctx context.Context, platform string) (t wxcrypt.Ticket, ok bool, err error) {
	sl := s.codec.sealing.Sealer
	if sl == nil {
		return wxcrypt.Ticket{}, false, ErrNoSealing
	}
	key := s.keys.PlatformTicket(platform)
	resp, err := s.c.Get(ctx, key)
	if err != nil {
		return wxcrypt.Ticket{}, false, fmt.Errorf("read ticket of %s: %w", platform, err)
	}
	if len(resp.Kvs) == 0 {
		return wxcrypt.Ticket{}, false, nil
	}
	var st storedTicket
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		return wxcrypt.Ticket{}, false, fmt.Errorf("%w: %s: not a ticket", ErrRecordUnreadable, key)
	}
	plain, err := sl.Open(st.Sealed, ticketAD(key, st.CreateTime))
	if err != nil {
		return wxcrypt.Ticket{}, false, fmt.Errorf("%w: %s: %v", ErrRecordUnreadable, key, err)
	}
	return wxcrypt.Ticket{Value: string(plain), CreateTime: time.Unix(st.CreateTime, 0)}, true, nil
}
