package wxcrypt

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// MaxBodyLen bounds a pushed body and a decrypted event accepted by
// ParseEnvelope and ParseEvent.
const MaxBodyLen = 64 << 10

// ErrMalformed is wrapped by every parse error: a body that is too long,
// not XML, not an <xml> document, or lacks a required field. Its detail
// names fields, never their values.
var ErrMalformed = errors.New("wxcrypt: malformed message")

// Envelope is a pushed body: <xml><AppId/><Encrypt/></xml>. Official
// Account pushes carry ToUserName instead of AppId.
type Envelope struct {
	AppID      string `xml:"AppId"`
	ToUserName string `xml:"ToUserName"`
	Encrypt    string `xml:"Encrypt"`
}

// ParseEnvelope parses a pushed body of at most MaxBodyLen bytes.
func ParseEnvelope(body []byte) (Envelope, error) {
	var e Envelope
	if err := decodeXML(body, &e); err != nil {
		return Envelope{}, err
	}
	e.AppID, e.ToUserName, e.Encrypt = strings.TrimSpace(e.AppID), strings.TrimSpace(e.ToUserName), strings.TrimSpace(e.Encrypt)
	if e.Encrypt == "" {
		return Envelope{}, fmt.Errorf("%w: no Encrypt", ErrMalformed)
	}
	return e, nil
}

// Open does what a receiver does with a push: parse body, check that
// msgSignature signs its Encrypt field with timestamp and nonce, and
// decrypt it. The envelope's AppId, if present, must be c's appid.
func (c *Crypter) Open(msgSignature, timestamp, nonce string, body []byte) (Opened, error) {
	env, err := ParseEnvelope(body)
	if err != nil {
		return Opened{}, err
	}
	if err := c.Verify(msgSignature, timestamp, nonce, env.Encrypt); err != nil {
		return Opened{}, err
	}
	if env.AppID != "" && env.AppID != c.appID {
		return Opened{}, ErrAppID
	}
	return c.Decrypt(env.Encrypt)
}

// Seal encrypts msg and returns the body and msg_signature of a push, as
// WeChat sends them (for simulators and tests).
func (c *Crypter) Seal(msg []byte, timestamp, nonce string) (body []byte, msgSignature string, err error) {
	enc, err := c.Encrypt(msg)
	if err != nil {
		return nil, "", err
	}
	var b bytes.Buffer
	b.WriteString("<xml><AppId><![CDATA[")
	b.WriteString(c.appID)
	b.WriteString("]]></AppId><Encrypt><![CDATA[")
	b.WriteString(enc) // base64: no "]]>"
	b.WriteString("]]></Encrypt></xml>")
	return b.Bytes(), c.Sign(timestamp, nonce, enc), nil
}

// InfoType values of the events pushed to a platform's authorization-event
// URL.
const (
	InfoVerifyTicket     = "component_verify_ticket"
	InfoAuthorized       = "authorized"
	InfoUpdateAuthorized = "updateauthorized"
	InfoUnauthorized     = "unauthorized"
)

// ErrUnknownEvent is returned by ParseEvent, with the event, for an
// InfoType this package does not know (WeChat adds new ones; the receiver
// should still answer "success").
var ErrUnknownEvent = errors.New("wxcrypt: unknown InfoType")

// Event is a decrypted push to the authorization-event URL. Fields are
// set by InfoType:
//   - component_verify_ticket: ComponentVerifyTicket;
//   - authorized, updateauthorized: AuthorizerAppID, AuthorizationCode,
//     AuthorizationCodeExpiredTime, PreAuthCode;
//   - unauthorized: AuthorizerAppID.
//
// String and GoString hide the ticket and the code.
type Event struct {
	AppID                        string    // the component appid
	CreateTime                   time.Time // when WeChat made the event (whole seconds)
	InfoType                     string
	ComponentVerifyTicket        string
	AuthorizerAppID              string
	AuthorizationCode            string
	AuthorizationCodeExpiredTime time.Time
	PreAuthCode                  string
}

// wireEvent is Event as WeChat writes it.
type wireEvent struct {
	AppID                        string `xml:"AppId"`
	CreateTime                   string `xml:"CreateTime"`
	InfoType                     string `xml:"InfoType"`
	ComponentVerifyTicket        string `xml:"ComponentVerifyTicket"`
	AuthorizerAppid              string `xml:"AuthorizerAppid"`
	AuthorizationCode            string `xml:"AuthorizationCode"`
	AuthorizationCodeExpiredTime string `xml:"AuthorizationCodeExpiredTime"`
	PreAuthCode                  string `xml:"PreAuthCode"`
}

// ParseEvent parses a decrypted event and checks the fields its InfoType
// needs. An unknown InfoType returns the common fields and ErrUnknownEvent.
func ParseEvent(msg []byte) (Event, error) {
	var w wireEvent
	if err := decodeXML(msg, &w); err != nil {
		return Event{}, err
	}
	e := Event{
		AppID:                 strings.TrimSpace(w.AppID),
		InfoType:              strings.TrimSpace(w.InfoType),
		ComponentVerifyTicket: strings.TrimSpace(w.ComponentVerifyTicket),
		AuthorizerAppID:       strings.TrimSpace(w.AuthorizerAppid),
		AuthorizationCode:     strings.TrimSpace(w.AuthorizationCode),
		PreAuthCode:           strings.TrimSpace(w.PreAuthCode),
	}
	var err error
	if e.CreateTime, err = unixField("CreateTime", w.CreateTime); err != nil {
		return Event{}, err
	}
	if e.AuthorizationCodeExpiredTime, err = unixField("AuthorizationCodeExpiredTime", w.AuthorizationCodeExpiredTime); err != nil {
		return Event{}, err
	}
	need := func(name, v string) error {
		if v == "" {
			return fmt.Errorf("%w: %s event without %s", ErrMalformed, e.InfoType, name)
		}
		return nil
	}
	if e.AppID == "" {
		return Event{}, fmt.Errorf("%w: no AppId", ErrMalformed)
	}
	if e.CreateTime.IsZero() {
		return Event{}, fmt.Errorf("%w: no CreateTime", ErrMalformed)
	}
	switch e.InfoType {
	case InfoVerifyTicket:
		err = need("ComponentVerifyTicket", e.ComponentVerifyTicket)
	case InfoAuthorized, InfoUpdateAuthorized:
		err = errors.Join(need("AuthorizerAppid", e.AuthorizerAppID), need("AuthorizationCode", e.AuthorizationCode))
	case InfoUnauthorized:
		err = need("AuthorizerAppid", e.AuthorizerAppID)
	case "":
		err = fmt.Errorf("%w: no InfoType", ErrMalformed)
	default:
		return e, ErrUnknownEvent
	}
	if err != nil {
		return Event{}, err
	}
	return e, nil
}

// unixField parses a field of whole Unix seconds; "" is the zero time.
func unixField(name, v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > 1<<40 {
		return time.Time{}, fmt.Errorf("%w: %s is not a Unix time", ErrMalformed, name)
	}
	return time.Unix(n, 0), nil
}

// String describes e without its ticket or code.
func (e Event) String() string {
	s := fmt.Sprintf("wxcrypt.Event{InfoType:%s AppID:%s CreateTime:%d", e.InfoType, e.AppID, e.CreateTime.Unix())
	if e.AuthorizerAppID != "" {
		s += " AuthorizerAppID:" + e.AuthorizerAppID
	}
	return s + "}"
}

// GoString is String.
func (e Event) GoString() string { return e.String() }

// decodeXML decodes one <xml> document of at most MaxBodyLen bytes into v.
func decodeXML(body []byte, v any) error {
	if len(body) > MaxBodyLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxBodyLen)
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	// No charset other than UTF-8: WeChat sends UTF-8, and a reader for
	// another one would be attacker-chosen code.
	d.CharsetReader = func(label string, _ io.Reader) (io.Reader, error) {
		return nil, fmt.Errorf("charset not supported")
	}
	start, err := firstElement(d)
	if err != nil {
		return err
	}
	if start.Name.Local != "xml" {
		return fmt.Errorf("%w: root element is not <xml>", ErrMalformed)
	}
	if err := d.DecodeElement(v, &start); err != nil {
		// xml errors quote input lines: keep only their kind.
		return fmt.Errorf("%w: not well-formed XML", ErrMalformed)
	}
	// Anything but white space, comments or instructions after the root
	// is refused.
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: not well-formed XML after the root", ErrMalformed)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return fmt.Errorf("%w: text after the root", ErrMalformed)
			}
		case xml.Comment, xml.ProcInst:
		default:
			return fmt.Errorf("%w: content after the root", ErrMalformed)
		}
	}
}

// firstElement skips the prolog and returns the root's start tag.
func firstElement(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("%w: no root element", ErrMalformed)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return xml.StartElement{}, fmt.Errorf("%w: text before the root", ErrMalformed)
			}
		case xml.ProcInst, xml.Comment:
		default: // a DOCTYPE or anything else
			return xml.StartElement{}, fmt.Errorf("%w: unexpected token before the root", ErrMalformed)
		}
	}
}
