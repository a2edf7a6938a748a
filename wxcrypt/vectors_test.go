package wxcrypt

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

// WeChat's published example vectors. Each is checked by computation: the
// signature is recomputed, the ciphertext decrypted (or produced) here, and
// compared with the value the source publishes.

// Vector A: the Java test shipped in WeChat's official message-crypto
// sample (WXBizMsgCryptTest.java, testAesEncrypt and testAesEncrypt2: a
// fixed random prefix "aaaabbbbccccdddd", so the ciphertext is exact).
// Copied verbatim in binarywang/WxJava,
// weixin-java-common/src/test/java/me/chanjar/weixin/common/util/crypto/WxCryptUtilTest.java,
// whose copy has the key ending in "E" instead of "G": both decode to the
// same 32 bytes (the last character's two spare bits differ), and both
// must give the published ciphertext.
const (
	vecAKey     = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	vecAKeyE    = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFE"
	vecAToken   = "pamtest"
	vecAAppID   = "wxb11529c136998cb6"
	vecARandom  = "aaaabbbbccccdddd"
	vecAMsg1    = "我是中文abcd123"
	vecACipher1 = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
	vecAMsg2    = "<xml><ToUserName><![CDATA[oia2Tj我是中文jewbmiOUlr6X-1crbLOvLw]]></ToUserName><FromUserName><![CDATA[gh_7f083739789a]]></FromUserName><CreateTime>1407743423</CreateTime><MsgType><![CDATA[video]]></MsgType><Video><MediaId><![CDATA[eYJ1MbwPRJtOvIEabaxHs7TX2D-HV71s79GUxqdUkjm6Gs2Ed1KF3ulAOA9H1xG0]]></MediaId><Title><![CDATA[testCallBackReplyVideo]]></Title><Description><![CDATA[testCallBackReplyVideo]]></Description></Video></xml>"
	vecACipher2 = "jn1L23DB+6ELqJ+6bruv23M2GmYfkv0xBh2h+XTBOKVKcgDFHle6gqcZ1cZrk3e1qjPQ1F4RsLWzQRG9udbKWesxlkupqcEcW7ZQweImX9+wLMa0GaUzpkycA8+IamDBxn5loLgZpnS7fVAbExOkK5DYHBmv5tptA9tklE/fTIILHR8HLXa5nQvFb3tYPKAlHF3rtTeayNf0QuM+UW/wM9enGIDIJHF7CLHiDNAYxr+r+OrJCmPQyTy8cVWlu9iSvOHPT/77bZqJucQHQ04sq7KZI27OcqpQNSto2OdHCoTccjggX5Z9Mma0nMJBU+jLKJ38YB1fBIz+vBzsYjrTmFQ44YfeEuZ+xRTQwr92vhA9OxchWVINGC50qE/6lmkwWTwGX9wtQpsJKhP+oS7rvTY8+VdzETdfakjkwQ5/Xka042OlUb1/slTwo4RscuQ+RdxSGvDahxAJ6+EAjLt9d8igHngxIbf6YyqqROxuxqIeIch3CssH/LqRs+iAcILvApYZckqmA7FNERspKA5f8GoJ9sv8xmGvZ9Yrf57cExWtnX8aCMMaBropU/1k+hKP5LVdzbWCG0hGwx/dQudYR/eXp3P0XxjlFiy+9DMlaFExWUZQDajPkdPrEeOwofJb"
)

// Vector B: WeCom's official Go sample, sbzhu/weworkapi_golang sample.go
// (by the WeCom team; the same WXBizMsgCrypt scheme with the corpid as the
// receiving id): "使用示例一" verifies a URL, "使用示例二" decrypts a pushed
// message. The same values appear in the PHP, Python and Java samples.
const (
	vecBToken     = "QDG6eK"
	vecBKey       = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	vecBAppID     = "wx5823bf96d3bd56c7"
	vecBURLSig    = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
	vecBURLTime   = "1409659589"
	vecBURLNonce  = "263014780"
	vecBURLEcho   = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
	vecBMsgSig    = "477715d11cdb4164915debcba66cb864d751f3e6"
	vecBMsgTime   = "1409659813"
	vecBMsgNonce  = "1372623149"
	vecBMsgBody   = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[" + vecBMsgCipher + "]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
	vecBMsgCipher = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)

// Vector C: the Python Sample.py of WeChat's official message-crypto
// sample for Official Accounts (测试解密接口), reproduced in
// fotock/WXbizMsgCrypt-Node README.md: a signed, encrypted text message.
const (
	vecCToken  = "spamtest"
	vecCKey    = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	vecCAppID  = "wx2c2769f8efd9abc2"
	vecCTime   = "1409735669"
	vecCNonce  = "1320562132"
	vecCSig    = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
	vecCCipher = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)

func mustNew(t *testing.T, cfg Config) *Crypter {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestVectorAEncryptWithFixedRandom(t *testing.T) {
	var random [randomLen]byte
	copy(random[:], vecARandom)
	for _, key := range []string{vecAKey, vecAKeyE} {
		c := mustNew(t, Config{Token: vecAToken, AppID: vecAAppID, Key: key})
		for _, tc := range []struct{ msg, want string }{{vecAMsg1, vecACipher1}, {vecAMsg2, vecACipher2}} {
			if got := c.encrypt(random, []byte(tc.msg)); got != tc.want {
				t.Errorf("key ...%s: encrypt(%.20q) = %.40s..., want the published %.40s...", key[40:], tc.msg, got, tc.want)
			}
			op, err := c.Decrypt(tc.want)
			if err != nil || string(op.Msg) != tc.msg || op.PreviousKey {
				t.Errorf("key ...%s: Decrypt(published) = %q, %v, %v; want %q", key[40:], op.Msg, op.PreviousKey, err, tc.msg)
			}
		}
	}
}

func TestVectorBVerifyURL(t *testing.T) {
	c := mustNew(t, Config{Token: vecBToken, AppID: vecBAppID, Key: vecBKey})
	if got := c.Sign(vecBURLTime, vecBURLNonce, vecBURLEcho); got != vecBURLSig {
		t.Fatalf("Sign = %s, want the published %s", got, vecBURLSig)
	}
	if err := c.Verify(strings.ToUpper(vecBURLSig), vecBURLTime, vecBURLNonce, vecBURLEcho); err != nil {
		t.Fatalf("Verify(upper-case published signature) = %v", err)
	}
	op, err := c.Decrypt(vecBURLEcho)
	if err != nil {
		t.Fatalf("Decrypt(echostr) = %v", err)
	}
	// The sample prints the echo string; it is a decimal number.
	if len(op.Msg) == 0 || strings.Trim(string(op.Msg), "0123456789") != "" {
		t.Fatalf("echostr decrypts to %q, want digits", op.Msg)
	}
}

func TestVectorBDecryptMessage(t *testing.T) {
	c := mustNew(t, Config{Token: vecBToken, AppID: vecBAppID, Key: vecBKey})
	if got := c.Sign(vecBMsgTime, vecBMsgNonce, vecBMsgCipher); got != vecBMsgSig {
		t.Fatalf("Sign = %s, want the published %s", got, vecBMsgSig)
	}
	op, err := c.Open(vecBMsgSig, vecBMsgTime, vecBMsgNonce, []byte(vecBMsgBody))
	if err != nil {
		t.Fatalf("Open(published push) = %v", err)
	}
	// The published envelope carries ToUserName and AgentID in clear;
	// the decrypted message must agree with them and with the timestamp.
	var m struct {
		ToUserName string
		CreateTime string
		AgentID    string
	}
	if err := xml.Unmarshal(op.Msg, &m); err != nil {
		t.Fatalf("decrypted message is not XML: %v", err)
	}
	if m.ToUserName != vecBAppID || m.CreateTime != vecBMsgTime || m.AgentID != "218" {
		t.Fatalf("decrypted %+v, want ToUserName %s, CreateTime %s, AgentID 218", m, vecBAppID, vecBMsgTime)
	}
	// The same push for another corp: the appid at the end of the
	// plaintext must be refused.
	other := mustNew(t, Config{Token: vecBToken, AppID: "wx0000000000000000", Key: vecBKey})
	if _, err := other.Decrypt(vecBMsgCipher); !errors.Is(err, ErrAppID) {
		t.Fatalf("Decrypt for another appid = %v, want ErrAppID", err)
	}
}

func TestVectorCDecryptMessage(t *testing.T) {
	c := mustNew(t, Config{Token: vecCToken, AppID: vecCAppID, Key: vecCKey})
	if got := c.Sign(vecCTime, vecCNonce, vecCCipher); got != vecCSig {
		t.Fatalf("Sign = %s, want the published %s", got, vecCSig)
	}
	body := "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[" + vecCCipher + "]]></Encrypt></xml>"
	op, err := c.Open(vecCSig, vecCTime, vecCNonce, []byte(body))
	if err != nil {
		t.Fatalf("Open(published push) = %v", err)
	}
	// The sample's from_xml also carries the message's fields in clear
	// (CreateTime 1409735668, Content abcdteT, MsgId 6054768590064713728):
	// the decrypted message must have the same.
	var m struct {
		CreateTime, Content, MsgId string
	}
	if err := xml.Unmarshal(op.Msg, &m); err != nil {
		t.Fatalf("decrypted message is not XML: %v", err)
	}
	if m.CreateTime != "1409735668" || m.Content != "abcdteT" || m.MsgId != "6054768590064713728" {
		t.Fatalf("decrypted %+v, want the clear fields of the published message", m)
	}
}
