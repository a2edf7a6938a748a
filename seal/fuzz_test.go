package seal_test

import (
	"bytes"
	"testing"

	"github.com/wxtoken/wxtoken/seal"
)

// FuzzOpen: Open never panics, opens nothing but what Seal made for the
// same associated data, and opens what Seal made.
func FuzzOpen(f *testing.F) {
	k, err := seal.NewKey(bytes.Repeat([]byte{0xa5}, seal.KeySize))
	if err != nil {
		f.Fatal(err)
	}
	r, _ := seal.NewRing(k)
	good, _ := r.Seal([]byte(`{"cred":"a/token"}`), []byte("/w/cred/a/token"))
	f.Add(good, []byte("/w/cred/a/token"))
	f.Add(good[:len(good)-1], []byte("/w/cred/a/token"))
	f.Add([]byte(`{"cred":"a/token"}`), []byte("/w/cred/a/token"))
	f.Add([]byte{seal.Version}, []byte(nil))
	f.Fuzz(func(t *testing.T, sealed, ad []byte) {
		// The only value ever sealed with this key is that of the seeds
		// (each fuzzing process seals its own, with another nonce).
		plain, err := r.Open(sealed, ad)
		if err == nil && (!bytes.Equal(plain, []byte(`{"cred":"a/token"}`)) || !bytes.Equal(ad, []byte("/w/cred/a/token"))) {
			t.Fatalf("Open accepted a value Seal did not make for this ad: %q", plain)
		}
		again, err := r.Seal(sealed, ad)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := r.Open(again, ad); err != nil || !bytes.Equal(back, sealed) {
			t.Fatalf("round trip: %q, %v", back, err)
		}
	})
}

// FuzzParseKey: ParseKey never panics and never accepts fewer than 32
// bytes of key material.
func FuzzParseKey(f *testing.F) {
	f.Add([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"))
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Add([]byte("pRWTn4tpOMuDcXkz4cVn2/7E3Hgr8H0pjQ4iWiU1m7A=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := seal.ParseKey(data)
		if err == nil && (k.IsZero() || len(data) < seal.KeySize) {
			t.Fatalf("ParseKey(%q) accepted %v", data, k)
		}
	})
}
