package tokenstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// Sealer encrypts record values before they go to etcd and decrypts them
// after, binding each to associated data: the record's etcd key, so that a
// value copied under another key does not open. seal.Ring implements it.
// Its methods are called concurrently.
type Sealer interface {
	Seal(plain, ad []byte) ([]byte, error)
	Open(sealed, ad []byte) ([]byte, error)
}

// ErrRecordUnreadable means a record in etcd does not open or does not
// decode: it was forged or damaged, sealed with a key not in the ring, or
// stored in the clear while encryption is on. Such a record is never
// served.
var ErrRecordUnreadable = errors.New("tokenstore: record does not open")

// Sealing configures how records are kept in etcd. The zero Sealing stores
// them as plain JSON.
type Sealing struct {
	// Sealer, if set, seals every record written and opens every record
	// read; a record that does not open is refused.
	Sealer Sealer
	// AcceptPlaintext lets records stored in the clear (plain JSON) be read
	// even with a Sealer: only while turning encryption on.
	AcceptPlaintext bool
}

// recordCodec turns records into etcd values and back. Only records carry
// credentials, so only records are sealed: intents, budgets, reports,
// states and presence hold none and stay plain JSON. Safe for concurrent
// use.
type recordCodec struct {
	sealing  Sealing
	creds    string        // Keys.Creds(): the prefix a record's key starts with
	failures *atomic.Int64 // records that did not open or decode
}

func newRecordCodec(k Keys, s Sealing) recordCodec {
	return recordCodec{sealing: s, creds: k.Creds(), failures: new(atomic.Int64)}
}

// encodeRecord returns the etcd value of rec stored under key.
func (c recordCodec) encodeRecord(key string, rec Record) (string, error) {
	val, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode record %s: %w", rec.Cred, err)
	}
	if c.sealing.Sealer == nil {
		return string(val), nil
	}
	sealed, err := c.sealing.Sealer.Seal(val, []byte(key))
	if err != nil {
		return "", fmt.Errorf("seal record %s: %w", rec.Cred, err)
	}
	return string(sealed), nil
}

// decodeRecord returns the record stored as val under key. Its error wraps
// ErrRecordUnreadable and never holds any of the value; each one is
// counted.
func (c recordCodec) decodeRecord(key string, val []byte) (*Record, error) {
	rec, err := c.decode(key, val)
	if err != nil {
		if c.failures != nil {
			c.failures.Add(1)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrRecordUnreadable, key, err)
	}
	return rec, nil
}

func (c recordCodec) decode(key string, val []byte) (*Record, error) {
	plain := val
	if s := c.sealing.Sealer; s != nil {
		opened, err := s.Open(val, []byte(key))
		switch {
		case err == nil:
			plain = opened
		case c.sealing.AcceptPlaintext && len(val) > 0 && val[0] == '{':
			// a plain JSON record, read while turning encryption on
		default:
			return nil, err
		}
	}
	rec := new(Record)
	if err := json.Unmarshal(plain, rec); err != nil {
		return nil, errors.New("not a record (malformed JSON)")
	}
	if want, ok := strings.CutPrefix(key, c.creds); !ok || rec.Cred != want {
		return nil, fmt.Errorf("holds the record of %q", rec.Cred)
	}
	return rec, nil
}

// OpenFailures is how many records read from etcd did not open or decode
// (and were therefore not served) since the cache was made.
func (c *Cache) OpenFailures() int64 { return c.codec.failures.Load() }

// SetSealing makes s seal the records it writes and open those it reads.
// Call it before the Store is used; it is not safe to call concurrently
// with other methods.
func (s *Store) SetSealing(sl Sealing) { s.codec = newRecordCodec(s.keys, sl) }
