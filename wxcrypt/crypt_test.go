package wxcrypt

import (
	"bytes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const (
	testToken = "tok3nSecretValue"
	testAppID = "wxcomponent00001"
	testKey   = "Q0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaMDEyMzQ1Njc"
	testKey2  = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA"
)

func testCrypter(t *testing.T) *Crypter {
	return mustNew(t, Config{Token: testToken, AppID: testAppID, Key: testKey})
}

// rawSeal encrypts plain, already padded, with the key of c.
func rawSeal(c *Crypter, plain []byte) string {
	k := c.keys[0]
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(k.block, k.iv[:]).CryptBlocks(ct, plain)
	return base64.StdEncoding.EncodeToString(ct)
}

// layout builds random | length | msg | appid, with length n.
func layout(msg, appID string, n uint32) []byte {
	b := bytes.Repeat([]byte{'r'}, randomLen)
	b = binary.BigEndian.AppendUint32(b, n)
	return append(append(b, msg...), appID...)
}

// pad appends PKCS#7 padding to a 32-byte block.
func pad(b []byte) []byte {
	n := padBlock - len(b)%padBlock
	return append(b, bytes.Repeat([]byte{byte(n)}, n)...)
}

func TestRoundTrip(t *testing.T) {
	c := testCrypter(t)
	for _, msg := range []string{"", "x", strings.Repeat("y", 11), strings.Repeat("z", 12), strings.Repeat("é", 500)} {
		enc, err := c.Encrypt([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		ct, _ := base64.StdEncoding.DecodeString(enc)
		if len(ct)%padBlock != 0 {
			t.Errorf("ciphertext of %d bytes: not padded to %d", len(ct), padBlock)
		}
		op, err := c.Decrypt(enc)
		if err != nil || string(op.Msg) != msg {
			t.Errorf("round trip of %d bytes: got %d bytes, %v", len(msg), len(op.Msg), err)
		}
		// Two encryptions differ: the prefix is random.
		if again, _ := c.Encrypt([]byte(msg)); again == enc {
			t.Errorf("two encryptions of %q are equal", msg)
		}
	}
	body, sig, err := c.Seal([]byte("<xml/>"), "1700000000", "nonce1")
	if err != nil {
		t.Fatal(err)
	}
	op, err := c.Open(sig, "1700000000", "nonce1", body)
	if err != nil || string(op.Msg) != "<xml/>" {
		t.Fatalf("Open(Seal) = %q, %v", op.Msg, err)
	}
}

func TestRefusals(t *testing.T) {
	c := testCrypter(t)
	body, sig, err := c.Seal([]byte("hello"), "1700000000", "n")
	if err != nil {
		t.Fatal(err)
	}
	env, _ := ParseEnvelope(body)
	flip := []byte(sig)
	flip[0] ^= 1
	otherAppID := mustNew(t, Config{Token: testToken, AppID: "wxotherapp000001", Key: testKey})
	forOther, _ := otherAppID.Encrypt([]byte("hello"))
	for _, tc := range []struct {
		name    string
		open    func() error
		wantErr error
	}{
		{"signature one bit off", func() error { _, err := c.Open(string(flip), "1700000000", "n", body); return err }, ErrSignature},
		{"other timestamp", func() error { _, err := c.Open(sig, "1700000001", "n", body); return err }, ErrSignature},
		{"other nonce", func() error { _, err := c.Open(sig, "1700000000", "m", body); return err }, ErrSignature},
		{"empty signature", func() error { _, err := c.Open("", "1700000000", "n", body); return err }, ErrSignature},
		{"signature of another token", func() error {
			_, err := c.Open(Sign("other", "1700000000", "n", env.Encrypt), "1700000000", "n", body)
			return err
		}, ErrSignature},
		{"appid inside the plaintext", func() error { _, err := c.Decrypt(forOther); return err }, ErrAppID},
		{"appid prefix inside the plaintext", func() error {
			_, err := c.Decrypt(rawSeal(c, pad(layout("hi", testAppID[:len(testAppID)-1], 2))))
			return err
		}, ErrAppID},
		{"appid with a suffix inside the plaintext", func() error {
			_, err := c.Decrypt(rawSeal(c, pad(layout("hi", testAppID+"x", 2))))
			return err
		}, ErrAppID},
		{"envelope AppId of another app", func() error {
			b := bytes.Replace(body, []byte(testAppID), []byte("wxotherapp000001"), 1)
			_, err := c.Open(sig, "1700000000", "n", b)
			return err
		}, ErrAppID},
		{"length field past the end", func() error {
			_, err := c.Decrypt(rawSeal(c, pad(layout("hi", testAppID, 1000))))
			return err
		}, ErrCiphertext},
		{"length field of 2^32-1", func() error {
			_, err := c.Decrypt(rawSeal(c, pad(layout("hi", testAppID, 0xffffffff))))
			return err
		}, ErrCiphertext},
		{"not base64", func() error { _, err := c.Decrypt("***"); return err }, ErrCiphertext},
		{"empty", func() error { _, err := c.Decrypt(""); return err }, ErrCiphertext},
		{"not whole blocks", func() error { _, err := c.Decrypt(base64.StdEncoding.EncodeToString(make([]byte, 40))); return err }, ErrCiphertext},
		{"too long", func() error { _, err := c.Decrypt(strings.Repeat("A", MaxEncryptLen+4)); return err }, ErrCiphertext},
		{"too short for the layout", func() error {
			_, err := c.Decrypt(rawSeal(c, bytes.Repeat([]byte{16}, 16)))
			return err
		}, ErrCiphertext},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.open()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestPadding: pad values 1..32 are accepted (WeChat pads to 32 bytes, so
// a decoder that allows only 1..16 refuses a quarter of its messages);
// 0, 33..255 and inconsistent padding bytes are refused.
func TestPadding(t *testing.T) {
	c := testCrypter(t)
	base := layout("m", testAppID, 1) // 16+4+1+16 = 37 bytes
	for n := 1; n <= 32; n++ {
		// Make len(base)+n a multiple of 16 by growing the message.
		extra := (16 - (len(base)+n)%16) % 16
		plain := append(layout("m"+strings.Repeat("x", extra), testAppID, uint32(1+extra)), bytes.Repeat([]byte{byte(n)}, n)...)
		op, err := c.Decrypt(rawSeal(c, plain))
		if err != nil || len(op.Msg) != 1+extra {
			t.Errorf("pad %d: %v", n, err)
		}
	}
	bad := map[string][]byte{}
	for _, n := range []int{0, 33, 48, 255} {
		p := append(bytes.Clone(base), 0)
		for len(p)%16 != 0 {
			p = append(p, 0)
		}
		p[len(p)-1] = byte(n)
		bad[fmt.Sprintf("pad value %d", n)] = p
	}
	p := pad(bytes.Clone(base)) // 37 -> 64: 27 bytes of 27
	p[len(p)-5] = 26
	bad["inconsistent pad bytes"] = p
	for name, plain := range bad {
		if _, err := c.Decrypt(rawSeal(c, plain)); !errors.Is(err, ErrCiphertext) {
			t.Errorf("%s: err = %v, want ErrCiphertext", name, err)
		}
	}
}

func TestKeyChange(t *testing.T) {
	oldC := mustNew(t, Config{Token: testToken, AppID: testAppID, Key: testKey})
	newC := mustNew(t, Config{Token: testToken, AppID: testAppID, Key: testKey2})
	both := mustNew(t, Config{Token: testToken, AppID: testAppID, Key: testKey2, PreviousKey: testKey})
	encOld, _ := oldC.Encrypt([]byte("old"))
	encNew, _ := newC.Encrypt([]byte("new"))
	if op, err := both.Decrypt(encNew); err != nil || string(op.Msg) != "new" || op.PreviousKey {
		t.Errorf("current key: %q %v %v", op.Msg, op.PreviousKey, err)
	}
	if op, err := both.Decrypt(encOld); err != nil || string(op.Msg) != "old" || !op.PreviousKey {
		t.Errorf("previous key: %q %v %v, want old via the previous key", op.Msg, op.PreviousKey, err)
	}
	if _, err := newC.Decrypt(encOld); !errors.Is(err, ErrCiphertext) && !errors.Is(err, ErrAppID) {
		t.Errorf("without the previous key: err = %v, want a refusal", err)
	}
	// Encrypt always uses the current key.
	enc, _ := both.Encrypt([]byte("x"))
	if _, err := newC.Decrypt(enc); err != nil {
		t.Errorf("Encrypt did not use the current key: %v", err)
	}
}

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{testKey, true},
		{vecAKey, true},
		{"", false},
		{testKey[:42], false},
		{testKey + "A", false},
		{testKey[:42] + "*", false},
		{testKey[:42] + "=", false},
	} {
		err := ValidKey(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("ValidKey(%q) = %v, want ok %v", tc.key, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrKey) || (tc.key != "" && strings.Contains(err.Error(), tc.key))) {
			t.Errorf("ValidKey error %q: want ErrKey without the key", err)
		}
	}
	for _, cfg := range []Config{
		{AppID: testAppID, Key: testKey},
		{Token: testToken, Key: testKey},
		{Token: testToken, AppID: testAppID, Key: "short"},
		{Token: testToken, AppID: testAppID, Key: testKey, PreviousKey: "short"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}

// TestNoSecretsShown: errors and printed Crypters never show the token,
// the key or any plaintext.
func TestNoSecretsShown(t *testing.T) {
	c := mustNew(t, Config{Token: testToken, AppID: testAppID, Key: testKey, PreviousKey: testKey2})
	secret := "TICKET@@@plaintext-secret"
	forOther, _ := mustNew(t, Config{Token: testToken, AppID: "wxotherapp000001", Key: testKey}).Encrypt([]byte(secret))
	good, _ := c.Encrypt([]byte(secret))
	var texts []string
	for _, enc := range []string{forOther, good[:len(good)-8] + "AAAAAAA=", "%%%" + secret} {
		if _, err := c.Decrypt(enc); err != nil {
			texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err))
		}
	}
	for _, v := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		texts = append(texts, fmt.Sprintf(v, c), fmt.Sprintf(v, []*Crypter{c}))
	}
	_, err := New(Config{Token: testToken, AppID: testAppID, Key: testKey[:42] + "!"})
	texts = append(texts, err.Error())
	for _, text := range texts {
		for _, s := range []string{testToken, testKey, testKey2, secret, "plaintext", testKey[:42]} {
			if strings.Contains(text, s) {
				t.Errorf("%q shows %q", text, s)
			}
		}
	}
}
