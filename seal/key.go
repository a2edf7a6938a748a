package seal

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// IDSize is the size of a key id: the first bytes of the key's SHA-256.
const IDSize = 8

// Key is one 32-byte AES-256 key. Every printed form of a Key (fmt with any
// verb, log/slog) shows only its id, never the key. The zero Key is not a
// valid key. A Key is immutable and safe for concurrent use.
type Key struct {
	b  *[KeySize]byte
	id [IDSize]byte
}

// NewKey returns the Key of 32 bytes. It refuses a key of all zero bytes.
func NewKey(b []byte) (Key, error) {
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("key has %d bytes, want %d", len(b), KeySize)
	}
	zero := true
	for _, c := range b {
		zero = zero && c == 0
	}
	if zero {
		return Key{}, errors.New("key is all zero bytes, want 32 random bytes")
	}
	k := Key{b: new([KeySize]byte)}
	copy(k.b[:], b)
	sum := sha256.Sum256(b)
	copy(k.id[:], sum[:IDSize])
	return k, nil
}

// ParseKey reads a key in one of the forms a key file may hold:
//
//   - exactly 32 raw bytes (e.g. head -c 32 /dev/urandom);
//   - 64 hexadecimal digits (e.g. openssl rand -hex 32);
//   - 32 bytes in standard base64, padded or not (e.g. openssl rand -base64 32).
//
// The text forms may end with a newline (and other trailing white space).
// 32 raw bytes that are all printable ASCII are refused: that is a
// password, not a random key (a random key is all printable with a
// probability of about 1e-14). Errors never quote the data.
func ParseKey(data []byte) (Key, error) {
	if len(data) == KeySize {
		if !printable(data) {
			return NewKey(data)
		}
		return Key{}, errors.New("32 printable characters: a password, not a key (want 32 random bytes, 64 hex digits or base64 of 32 bytes)")
	}
	s := strings.TrimRight(string(data), " \t\r\n")
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return NewKey(b)
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return NewKey(b)
		}
	}
	return Key{}, fmt.Errorf("%d bytes that are neither 32 raw bytes, 64 hex digits nor base64 of 32 bytes", len(data))
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// ReadKeyFile reads and parses the key file at path (see ParseKey). Its
// errors name the path, never the content.
func ReadKeyFile(path string) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, err // *fs.PathError: names the path
	}
	k, err := ParseKey(data)
	if err != nil {
		return Key{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// LooseMode reports whether the file at path may be read by its group or
// by others, with its permission bits; a key file should be 0600 or 0400.
// A file that cannot be examined is not reported.
func LooseMode(path string) (fs.FileMode, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	return fi.Mode().Perm(), fi.Mode().Perm()&0o077 != 0
}

// ID returns the key id in hex: the first 8 bytes of the key's SHA-256.
func (k Key) ID() string { return hex.EncodeToString(k.id[:]) }

// IsZero reports whether k is the zero Key.
func (k Key) IsZero() bool { return k.b == nil }

// String returns "key:<id>".
func (k Key) String() string { return "key:" + k.ID() }

// GoString returns the same as String.
func (k Key) GoString() string { return k.String() }

// Format prints the String form for every verb.
func (k Key) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue logs the key's id only.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

var (
	_ fmt.Stringer   = Key{}
	_ fmt.Formatter  = Key{}
	_ slog.LogValuer = Key{}
)
