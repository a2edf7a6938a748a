package access

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
)

// maxToken is the longest bearer token hashed without an allocation;
// longer ones are hashed all the same.
const maxToken = 256

// bearer returns the token of a single "Authorization: Bearer <token>"
// header (the scheme in any case, RFC 9110) and whether there is one.
func bearer(vals []string) (string, bool) {
	if len(vals) != 1 {
		return "", false
	}
	v := vals[0]
	const scheme = "bearer "
	if len(v) <= len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	tok := strings.TrimSpace(v[len(scheme):])
	return tok, tok != ""
}

// hashToken returns the SHA-256 of tok, copying a short token through a
// buffer on the stack so that the hot path does not allocate.
func hashToken(tok string) [sha256.Size]byte {
	if len(tok) <= maxToken {
		var buf [maxToken]byte
		n := copy(buf[:], tok)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(tok))
}

// matchToken returns the index of the client whose token hashes to sum, or
// -1. Every client's hash is compared in constant time, so the time taken
// tells nothing of which one, if any, matched.
func (g *Guard) matchToken(sum *[sha256.Size]byte) int {
	match := -1
	for i := range g.clients {
		c := &g.clients[i]
		if c.hasToken && equal(sum, &c.sum) {
			match = i
		}
	}
	return match
}

// equal compares two hashes in constant time, eight bytes at a time: the
// time taken does not depend on where they differ.
func equal(a, b *[sha256.Size]byte) bool {
	var diff uint64
	for i := 0; i < sha256.Size; i += 8 {
		diff |= binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:])
	}
	return diff == 0
}
