package wxcrypt

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecrypt feeds arbitrary Encrypt fields to a Crypter with a previous
// key. Decrypt must not panic, must fail only with its sentinels, and what
// it accepts must be a message for its appid that survives a round trip.
// Seeds: testdata/fuzz/FuzzDecrypt plus the published vectors.
func FuzzDecrypt(f *testing.F) {
	c, err := New(Config{Token: vecAToken, AppID: vecAAppID, Key: testKey, PreviousKey: vecAKey})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(vecACipher1)
	f.Add(vecACipher2)
	f.Add(vecBMsgCipher)
	enc, _ := c.Encrypt([]byte("<xml><InfoType>component_verify_ticket</InfoType></xml>"))
	f.Add(enc)
	f.Fuzz(func(t *testing.T, encrypt string) {
		op, err := c.Decrypt(encrypt)
		if err != nil {
			if !errors.Is(err, ErrCiphertext) && !errors.Is(err, ErrAppID) {
				t.Fatalf("Decrypt error %v is not a sentinel", err)
			}
			if op.Msg != nil {
				t.Fatalf("Decrypt failed but returned %d bytes", len(op.Msg))
			}
			return
		}
		again, err := c.Encrypt(op.Msg)
		if err != nil {
			t.Fatal(err)
		}
		back, err := c.Decrypt(again)
		if err != nil || !bytes.Equal(back.Msg, op.Msg) || back.PreviousKey {
			t.Fatalf("round trip of an accepted message: %v", err)
		}
	})
}

// FuzzOpen feeds arbitrary bodies and signatures: Open must not panic and
// must never accept a body whose signature it did not make.
func FuzzOpen(f *testing.F) {
	c, err := New(Config{Token: testToken, AppID: testAppID, Key: testKey})
	if err != nil {
		f.Fatal(err)
	}
	body, sig, _ := c.Seal([]byte("<xml/>"), "1700000000", "n")
	f.Add(body, sig, "1700000000", "n")
	f.Add([]byte(vecBMsgBody), vecBMsgSig, vecBMsgTime, vecBMsgNonce)
	f.Fuzz(func(t *testing.T, body []byte, sig, ts, nonce string) {
		op, err := c.Open(sig, ts, nonce, body)
		if err != nil {
			return
		}
		env, perr := ParseEnvelope(body)
		if perr != nil || c.Verify(sig, ts, nonce, env.Encrypt) != nil || op.Msg == nil {
			t.Fatalf("Open accepted a body it should refuse")
		}
	})
}

// FuzzParseEvent: ParseEvent must not panic, and an event it accepts has
// the fields its InfoType needs.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(ticketEvent))
	f.Add([]byte(`<xml><AppId>a</AppId><CreateTime>1</CreateTime><InfoType>authorized</InfoType><AuthorizerAppid>b</AuthorizerAppid><AuthorizationCode>c</AuthorizationCode></xml>`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		e, err := ParseEvent(msg)
		if err != nil {
			return
		}
		if e.AppID == "" || e.CreateTime.IsZero() {
			t.Fatalf("accepted event without AppId or CreateTime")
		}
		if e.InfoType == InfoVerifyTicket && e.ComponentVerifyTicket == "" {
			t.Fatalf("accepted ticket event without a ticket")
		}
	})
}
