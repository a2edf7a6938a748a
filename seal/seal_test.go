package seal_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxtoken/wxtoken/seal"
)

func randomBytes(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, seal.KeySize)
	for {
		_, _ = rand.Read(b)
		if bytes.ContainsFunc(b, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			return b
		}
	}
}

func newKey(t *testing.T) seal.Key {
	t.Helper()
	k, err := seal.NewKey(randomBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ring(t *testing.T, keys ...seal.Key) *seal.Ring {
	t.Helper()
	r, err := seal.NewRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSealOpen(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	r := ring(t, k1)
	plain := []byte(`{"cred":"shop/token","value":"ACCESS-TOKEN"}`)
	ad := []byte("/wxtoken/cred/shop/token")
	sealed, err := r.Seal(plain, ad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("ACCESS-TOKEN")) {
		t.Fatalf("sealed value holds the plain text")
	}
	if got, want := len(sealed), len(plain)+seal.Overhead; got != want {
		t.Errorf("len(sealed) = %d, want %d", got, want)
	}
	if sealed[0] != seal.Version {
		t.Errorf("version byte = %d, want %d", sealed[0], seal.Version)
	}
	if id, ok := seal.KeyID(sealed); !ok || id != k1.ID() {
		t.Errorf("KeyID = %q, %v; want %q", id, ok, k1.ID())
	}
	got, err := r.Open(sealed, ad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want %q", got, err, plain)
	}
	again, _ := r.Seal(plain, ad)
	if bytes.Equal(again, sealed) {
		t.Errorf("two seals of one value are equal: the nonce is not random")
	}

	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	tests := []struct {
		name   string
		ring   *seal.Ring
		sealed []byte
		ad     []byte
		want   error
	}{
		{"other associated data", r, sealed, []byte("/wxtoken/cred/other/token"), seal.ErrOpen},
		{"no associated data", r, sealed, nil, seal.ErrOpen},
		{"other key", ring(t, k2), sealed, ad, seal.ErrUnknownKey},
		{"altered ciphertext", r, flip(len(sealed) - 20), ad, seal.ErrOpen},
		{"altered tag", r, flip(len(sealed) - 1), ad, seal.ErrOpen},
		{"altered nonce", r, flip(1 + seal.IDSize), ad, seal.ErrOpen},
		{"altered version", r, flip(0), ad, seal.ErrNotSealed},
		{"altered key id", r, flip(1), ad, seal.ErrUnknownKey},
		{"plain JSON", r, plain, ad, seal.ErrNotSealed},
		{"truncated", r, sealed[:seal.Overhead-1], ad, seal.ErrNotSealed},
		{"empty", r, nil, ad, seal.ErrNotSealed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ring.Open(tt.sealed, tt.ad)
			if !errors.Is(err, tt.want) || got != nil {
				t.Errorf("Open = %q, %v; want nil, %v", got, err, tt.want)
			}
		})
	}
}

// A key id whose key is in the ring but whose id was forged onto a value
// sealed by another key does not open either.
func TestForgedKeyID(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	sealed, _ := ring(t, k2).Seal([]byte("v"), []byte("ad"))
	id, _ := hex.DecodeString(k1.ID())
	copy(sealed[1:], id)
	if _, err := ring(t, k1, k2).Open(sealed, []byte("ad")); !errors.Is(err, seal.ErrOpen) {
		t.Errorf("Open of a value with a forged key id: got %v, want ErrOpen", err)
	}
}

func TestRotation(t *testing.T) {
	old, next := newKey(t), newKey(t)
	ad := []byte("/p/cred/a/token")
	sealedOld, _ := ring(t, old).Seal([]byte("old"), ad)
	// Step 1: the new key is added after the old one: it opens, old seals.
	r1 := ring(t, old, next)
	if r1.SealingKeyID() != old.ID() {
		t.Errorf("step 1 seals with %s, want the old key %s", r1.SealingKeyID(), old.ID())
	}
	// Step 2: the new key first: it seals, the old one still opens.
	r2 := ring(t, next, old)
	sealedNew, _ := r2.Seal([]byte("new"), ad)
	if id, _ := seal.KeyID(sealedNew); id != next.ID() {
		t.Errorf("step 2 seals with %s, want the new key %s", id, next.ID())
	}
	for _, r := range []*seal.Ring{r1, r2} {
		if got, err := r.Open(sealedOld, ad); err != nil || string(got) != "old" {
			t.Errorf("old record: Open = %q, %v", got, err)
		}
		if got, err := r.Open(sealedNew, ad); err != nil || string(got) != "new" {
			t.Errorf("new record: Open = %q, %v", got, err)
		}
	}
	// Step 3: the old key removed: records it sealed no longer open.
	r3 := ring(t, next)
	if _, err := r3.Open(sealedOld, ad); !errors.Is(err, seal.ErrUnknownKey) {
		t.Errorf("old record after removing its key: got %v, want ErrUnknownKey", err)
	}
}

func TestNewRing(t *testing.T) {
	k := newKey(t)
	if _, err := seal.NewRing(); err == nil {
		t.Error("NewRing(): got nil error")
	}
	if _, err := seal.NewRing(k, k); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("NewRing(k, k): got %v, want a duplicate error", err)
	}
	if _, err := seal.NewRing(seal.Key{}); err == nil {
		t.Error("NewRing(zero key): got nil error")
	}
}

func TestParseKey(t *testing.T) {
	raw := randomBytes(t)
	want, _ := seal.NewKey(raw)
	sum := sha256.Sum256(raw)
	if got := want.ID(); got != hex.EncodeToString(sum[:8]) {
		t.Errorf("ID = %s, want the first 8 bytes of SHA-256 %x", got, sum[:8])
	}
	good := map[string][]byte{
		"raw":             raw,
		"hex":             []byte(hex.EncodeToString(raw)),
		"hex newline":     []byte(hex.EncodeToString(raw) + "\n"),
		"HEX crlf":        []byte(strings.ToUpper(hex.EncodeToString(raw)) + "\r\n"),
		"base64":          []byte(base64.StdEncoding.EncodeToString(raw)),
		"base64 newline":  []byte(base64.StdEncoding.EncodeToString(raw) + "\n"),
		"base64 unpadded": []byte(base64.RawStdEncoding.EncodeToString(raw) + "\n"),
	}
	for name, data := range good {
		t.Run(name, func(t *testing.T) {
			k, err := seal.ParseKey(data)
			if err != nil || k.ID() != want.ID() {
				t.Errorf("ParseKey = %v, %v; want %v", k, err, want)
			}
		})
	}
	bad := map[string][]byte{
		"empty":            nil,
		"short":            raw[:31],
		"raw with newline": append(bytes.Clone(raw), '\n'),
		"password":         []byte("correct-horse-battery-staple-123"),
		"zero":             make([]byte, 32),
		"zero hex":         []byte(strings.Repeat("0", 64)),
		"hex of 31 bytes":  []byte(hex.EncodeToString(raw[:31])),
		"base64 of 16":     []byte(base64.StdEncoding.EncodeToString(raw[:16])),
		"hex with garbage": []byte(hex.EncodeToString(raw)[:63] + "x"),
		"64 bytes of text": []byte(strings.Repeat("k", 64)),
	}
	for name, data := range bad {
		t.Run(name, func(t *testing.T) {
			if k, err := seal.ParseKey(data); err == nil {
				t.Errorf("ParseKey: got %v, nil error; want an error", k)
			} else if len(data) > 8 && strings.Contains(err.Error(), string(data[:8])) {
				t.Errorf("error %q quotes the data", err)
			}
		})
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	raw := randomBytes(t)
	path := filepath.Join(dir, "k")
	if err := os.WriteFile(path, []byte(hex.EncodeToString(raw)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := seal.ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode, loose := seal.LooseMode(path); loose {
		t.Errorf("LooseMode(0600) = %v, true; want false", mode)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if mode, loose := seal.LooseMode(path); !loose || mode != 0o640 {
		t.Errorf("LooseMode(0640) = %v, %v; want 0640, true", mode, loose)
	}
	// No printed form shows the key.
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("k", "key", k)
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %x %s %q", k, k, k, k, k, k), logged.String()} {
		if strings.Contains(s, hex.EncodeToString(raw)) || strings.Contains(s, hex.EncodeToString(raw[:8])) || strings.Contains(s, string(raw[:8])) {
			t.Errorf("printed key shows key bytes: %q", s)
		}
		if !strings.Contains(s, k.ID()) {
			t.Errorf("printed key %q does not show its id %s", s, k.ID())
		}
	}
	blank := filepath.Join(dir, "blank")
	_ = os.WriteFile(blank, []byte("\n"), 0o600)
	if _, err := seal.ReadKeyFile(blank); err == nil || !strings.Contains(err.Error(), blank) {
		t.Errorf("ReadKeyFile(blank) = %v, want an error naming the file", err)
	}
	if _, err := seal.ReadKeyFile(filepath.Join(dir, "nope")); err == nil {
		t.Error("ReadKeyFile(missing): got nil error")
	}
}
