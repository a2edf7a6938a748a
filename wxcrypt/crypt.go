// Package wxcrypt implements WeChat's message encryption ("WXBizMsgCrypt"),
// as used on a third-party platform's authorization-event URL: the
// msg_signature over (token, timestamp, nonce, Encrypt), AES-256-CBC with
// the key decoded from the 43-character EncodingAESKey, and the plaintext
// layout 16 random bytes | 4-byte big-endian length | message | appid.
//
// It also parses the pushed envelope and the decrypted events
// (component_verify_ticket, authorized, updateauthorized, unauthorized).
// It knows nothing of HTTP, storage or time sources; callers pass what they
// received.
//
// Errors from this package never contain the key, the token, a ticket, an
// authorization code or any plaintext: they are fixed texts, so that a
// caller may log them as they are.
package wxcrypt

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Sizes of the scheme.
const (
	// EncodingKeyLen is the length of an EncodingAESKey.
	EncodingKeyLen = 43
	// padBlock is the PKCS#7 block WeChat pads to: 32 bytes, not AES's 16.
	padBlock = 32
	// randomLen is the random prefix of a plaintext.
	randomLen = 16
	// MaxEncryptLen bounds the base64 Encrypt field accepted by Decrypt.
	// WeChat's events are a few hundred bytes.
	MaxEncryptLen = 64 << 10
)

// Sentinel errors. Decrypt and Open wrap them, with no detail that could
// carry a secret or plaintext.
var (
	// ErrKey: an EncodingAESKey that is not 43 characters of base64.
	ErrKey = errors.New("wxcrypt: invalid EncodingAESKey")
	// ErrSignature: msg_signature does not match.
	ErrSignature = errors.New("wxcrypt: signature mismatch")
	// ErrCiphertext: Encrypt is not base64, not whole AES blocks, too
	// long, or its padding or length fields are wrong under every key.
	ErrCiphertext = errors.New("wxcrypt: cannot decrypt")
	// ErrAppID: the message decrypted but was addressed to another appid.
	ErrAppID = errors.New("wxcrypt: message is for another appid")
)

// key is one decoded EncodingAESKey with its cipher.
type key struct {
	block cipher.Block
	iv    [aes.BlockSize]byte
}

// parseKey decodes an EncodingAESKey: 43 characters of standard base64
// whose decoding (with "=" appended) is 32 bytes.
func parseKey(encodingAESKey string) (*key, error) {
	if len(encodingAESKey) != EncodingKeyLen {
		return nil, fmt.Errorf("%w: length %d, want %d", ErrKey, len(encodingAESKey), EncodingKeyLen)
	}
	// Not Strict: WeChat's consoles accept any 43 characters of
	// [A-Za-z0-9], so the last one may set the two bits beyond the 32nd
	// byte (its own sample key, ending in "G", does); decoders ignore them.
	raw, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(raw) != 32 {
		// Never wrap the base64 error: it quotes the offending byte.
		return nil, fmt.Errorf("%w: not base64", ErrKey)
	}
	block, err := aes.NewCipher(raw)
	if err != nil { // unreachable with 32 bytes
		return nil, fmt.Errorf("%w: not an AES-256 key", ErrKey)
	}
	k := &key{block: block}
	copy(k.iv[:], raw[:aes.BlockSize])
	return k, nil
}

// ValidKey reports whether s is a usable EncodingAESKey; the error says
// why not, without quoting s.
func ValidKey(s string) error {
	_, err := parseKey(s)
	return err
}

// Config configures a Crypter.
type Config struct {
	// Token is the message verification token (消息校验Token).
	Token string
	// AppID is the receiving appid that ends every plaintext: the
	// component appid of a third-party platform.
	AppID string
	// Key is the current EncodingAESKey (消息加解密Key).
	Key string
	// PreviousKey, if set, is tried when Key fails, during a key change.
	PreviousKey string
}

// Crypter signs, verifies, encrypts and decrypts messages for one appid.
// It holds no mutable state and is safe for concurrent use. Printing it
// shows only the appid.
type Crypter struct {
	token string
	appID string
	keys  []*key // current first
}

// New validates cfg and returns a Crypter.
func New(cfg Config) (*Crypter, error) {
	switch {
	case cfg.Token == "":
		return nil, errors.New("wxcrypt: no token")
	case cfg.AppID == "":
		return nil, errors.New("wxcrypt: no appid")
	}
	cur, err := parseKey(cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	c := &Crypter{token: cfg.Token, appID: cfg.AppID, keys: []*key{cur}}
	if cfg.PreviousKey != "" {
		prev, err := parseKey(cfg.PreviousKey)
		if err != nil {
			return nil, fmt.Errorf("previous key: %w", err)
		}
		c.keys = append(c.keys, prev)
	}
	return c, nil
}

// AppID returns the receiving appid.
func (c *Crypter) AppID() string { return c.appID }

// String shows the appid only.
func (c *Crypter) String() string { return "wxcrypt.Crypter{appid:" + c.appID + "}" }

// GoString is String: %#v must not print the token or keys either.
func (c *Crypter) GoString() string { return c.String() }

// Format prints String for every verb, so that no verb reaches the fields.
func (c *Crypter) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// Sign returns msg_signature: the hex SHA-1 of token, timestamp, nonce and
// encrypt, sorted as byte strings and concatenated.
func Sign(token, timestamp, nonce, encrypt string) string {
	parts := []string{token, timestamp, nonce, encrypt}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

// Sign returns the msg_signature of encrypt under c's token.
func (c *Crypter) Sign(timestamp, nonce, encrypt string) string {
	return Sign(c.token, timestamp, nonce, encrypt)
}

// Verify checks msgSignature against timestamp, nonce and encrypt in
// constant time. It accepts upper- or lower-case hex.
func (c *Crypter) Verify(msgSignature, timestamp, nonce, encrypt string) error {
	want := c.Sign(timestamp, nonce, encrypt)
	got := strings.ToLower(msgSignature)
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return ErrSignature
	}
	return nil
}

// Opened is a decrypted message.
type Opened struct {
	// Msg is the message (for an event, its XML).
	Msg []byte
	// PreviousKey reports that only Config.PreviousKey could decrypt it:
	// the sender has not switched to the current key yet.
	PreviousKey bool
}

// Decrypt decrypts the Encrypt field of a message with the current key,
// then the previous one, and checks that it is addressed to c's appid.
// It does not check a signature; see Open.
func (c *Crypter) Decrypt(encrypt string) (Opened, error) {
	if len(encrypt) > MaxEncryptLen {
		return Opened{}, fmt.Errorf("%w: longer than %d bytes", ErrCiphertext, MaxEncryptLen)
	}
	ct, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil {
		return Opened{}, fmt.Errorf("%w: not base64", ErrCiphertext)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return Opened{}, fmt.Errorf("%w: not whole AES blocks", ErrCiphertext)
	}
	var firstErr error
	for i, k := range c.keys {
		msg, err := k.open(ct, c.appID)
		if err == nil {
			return Opened{Msg: msg, PreviousKey: i > 0}, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	// The current key's verdict: with a wrong key a plaintext is noise,
	// and "another appid" would mislead.
	return Opened{}, firstErr
}

// open decrypts ct with k and returns the message if the plaintext is
// well formed and ends in appID.
func (k *key) open(ct []byte, appID string) ([]byte, error) {
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(k.block, k.iv[:]).CryptBlocks(plain, ct)
	plain, ok := unpad(plain)
	if !ok {
		return nil, fmt.Errorf("%w: bad padding", ErrCiphertext)
	}
	if len(plain) < randomLen+4 {
		return nil, fmt.Errorf("%w: too short", ErrCiphertext)
	}
	body := plain[randomLen+4:]
	n := binary.BigEndian.Uint32(plain[randomLen:])
	if uint64(n) > uint64(len(body)) {
		return nil, fmt.Errorf("%w: length field exceeds the message", ErrCiphertext)
	}
	msg, rest := body[:n], body[n:]
	if subtle.ConstantTimeCompare(rest, []byte(appID)) != 1 {
		return nil, ErrAppID
	}
	return bytes.Clone(msg), nil
}

// unpad removes PKCS#7 padding to a 32-byte block: the last byte n must be
// 1..32 and the last n bytes must all be n.
func unpad(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	n := int(b[len(b)-1])
	if n < 1 || n > padBlock || n > len(b) {
		return nil, false
	}
	var diff byte
	for _, v := range b[len(b)-n:] {
		diff |= v ^ byte(n)
	}
	if diff != 0 {
		return nil, false
	}
	return b[:len(b)-n], true
}

// Encrypt encrypts msg for c's appid with the current key and a random
// prefix, and returns the base64 Encrypt field.
func (c *Crypter) Encrypt(msg []byte) (string, error) {
	var random [randomLen]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", fmt.Errorf("wxcrypt: random: %w", err)
	}
	return c.encrypt(random, msg), nil
}

// encrypt is Encrypt with a given random prefix (WeChat's samples fix it
// to compare against published ciphertexts).
func (c *Crypter) encrypt(random [randomLen]byte, msg []byte) string {
	return c.keys[0].seal(random, msg, c.appID)
}

func (k *key) seal(random [randomLen]byte, msg []byte, appID string) string {
	plain := make([]byte, 0, randomLen+4+len(msg)+len(appID)+padBlock)
	plain = append(plain, random[:]...)
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(msg)))
	plain = append(plain, msg...)
	plain = append(plain, appID...)
	n := padBlock - len(plain)%padBlock
	plain = append(plain, bytes.Repeat([]byte{byte(n)}, n)...)
	cipher.NewCBCEncrypter(k.block, k.iv[:]).CryptBlocks(plain, plain)
	return base64.StdEncoding.EncodeToString(plain)
}
