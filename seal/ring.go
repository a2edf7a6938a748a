// Package seal encrypts small values with a ring of AES-256-GCM keys. It
// knows nothing of where the values are kept: the caller passes associated
// data (such as the key path a value is stored under) that a sealed value
// opens only with, so that a value moved elsewhere does not open.
//
// A sealed value is an envelope:
//
//	version (1 byte, 1) | key id (8 bytes) | nonce (12 bytes) | ciphertext and tag
//
// The key id is the first 8 bytes of the key's SHA-256. The version and the
// key id are authenticated along with the caller's associated data. The
// first key of a Ring seals; every key of it opens.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Version is the envelope version Seal writes.
const Version byte = 1

const (
	nonceSize = 12
	headerLen = 1 + IDSize
	// Overhead is how many bytes a sealed value is longer than the plain one.
	Overhead = headerLen + nonceSize + 16
)

// Errors of Open. None of them carries any of the value.
var (
	// ErrNotSealed means the value is not an envelope: too short, or of
	// an unknown version (a plain value, for instance).
	ErrNotSealed = errors.New("seal: not a sealed value")
	// ErrUnknownKey means the value was sealed with a key not in the ring.
	ErrUnknownKey = errors.New("seal: sealed with a key not in the ring")
	// ErrOpen means the value does not authenticate: it was altered, or
	// the associated data differs (the value was moved).
	ErrOpen = errors.New("seal: value does not open (altered, or not sealed for this place)")
)

// Ring is an ordered set of keys: the first seals, all open. A Ring is
// immutable and safe for concurrent use.
type Ring struct {
	first ringKey
	byID  map[[IDSize]byte]ringKey
}

type ringKey struct {
	id   [IDSize]byte
	aead cipher.AEAD
}

// NewRing returns a Ring of keys, the first of which seals. It refuses an
// empty list, a zero Key, and the same key twice.
func NewRing(keys ...Key) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: no key")
	}
	r := &Ring{byID: make(map[[IDSize]byte]ringKey, len(keys))}
	for i, k := range keys {
		if k.IsZero() {
			return nil, fmt.Errorf("seal: key %d is not set", i)
		}
		if _, dup := r.byID[k.id]; dup {
			return nil, fmt.Errorf("seal: key %d (%s) is in the ring twice", i, k.ID())
		}
		block, err := aes.NewCipher(k.b[:])
		if err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", i, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key %d: %w", i, err)
		}
		rk := ringKey{id: k.id, aead: aead}
		r.byID[k.id] = rk
		if i == 0 {
			r.first = rk
		}
	}
	return r, nil
}

// SealingKeyID is the id (hex) of the key that seals.
func (r *Ring) SealingKeyID() string { return Key{id: r.first.id}.ID() }

// Seal encrypts plain with the ring's first key and a random nonce, binding
// it to ad. It returns a new slice; the error is only for interface
// symmetry (the random source does not fail).
func (r *Ring) Seal(plain, ad []byte) ([]byte, error) {
	out := make([]byte, headerLen+nonceSize, Overhead+len(plain))
	out[0] = Version
	copy(out[1:headerLen], r.first.id[:])
	nonce := out[headerLen:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return r.first.aead.Seal(out, nonce, plain, additional(out[:headerLen], ad)), nil
}

// Open decrypts a value Seal made with any key of the ring and the same ad.
// Its errors are ErrNotSealed, ErrUnknownKey or ErrOpen.
func (r *Ring) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead || sealed[0] != Version {
		return nil, ErrNotSealed
	}
	var id [IDSize]byte
	copy(id[:], sealed[1:headerLen])
	k, ok := r.byID[id]
	if !ok {
		return nil, ErrUnknownKey
	}
	nonce := sealed[headerLen : headerLen+nonceSize]
	plain, err := k.aead.Open(nil, nonce, sealed[headerLen+nonceSize:], additional(sealed[:headerLen], ad))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// KeyID returns the id (hex) of the key a sealed value names, and whether
// it is an envelope at all. It does not check that the value opens.
func KeyID(sealed []byte) (string, bool) {
	if len(sealed) < Overhead || sealed[0] != Version {
		return "", false
	}
	var k Key
	copy(k.id[:], sealed[1:headerLen])
	return k.ID(), true
}

// additional is the data GCM authenticates besides the ciphertext: the
// envelope's header, then the caller's associated data.
func additional(header, ad []byte) []byte {
	return bytes.Join([][]byte{header, ad}, nil)
}
