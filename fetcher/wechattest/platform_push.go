package wechattest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wxtoken/wxtoken/wxcrypt"
)

// Push is one POST the simulator made (or tried) to a platform's
// authorization-event URL.
type Push struct {
	At              time.Time `json:"at"` // simulator clock: the event's CreateTime
	Component       string    `json:"component"`
	InfoType        string    `json:"info_type"`
	AuthorizerAppID string    `json:"authorizer_appid,omitempty"`
	Ticket          string    `json:"ticket,omitempty"` // component_verify_ticket pushed
	Code            string    `json:"code,omitempty"`   // AuthorizationCode pushed
	WrongKey        bool      `json:"wrong_key,omitempty"`
	BadSignature    bool      `json:"bad_signature,omitempty"`
	Status          int       `json:"status"`           // HTTP status; 0 if none (no URL, or a transport error)
	Answer          string    `json:"answer,omitempty"` // the first 64 bytes of the body
	Err             string    `json:"err,omitempty"`
}

// Accepted reports whether the receiver answered 200 "success".
func (p Push) Accepted() bool { return p.Status == http.StatusOK && p.Answer == "success" }

// Pushes returns a copy of every push so far, in order.
func (s *Sim) Pushes() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.pushes...)
}

// eventXML is a decrypted event as WeChat writes it.
type eventXML struct {
	XMLName                      xml.Name `xml:"xml"`
	AppID                        string   `xml:"AppId"`
	CreateTime                   int64    `xml:"CreateTime"`
	InfoType                     string   `xml:"InfoType"`
	ComponentVerifyTicket        string   `xml:"ComponentVerifyTicket,omitempty"`
	AuthorizerAppid              string   `xml:"AuthorizerAppid,omitempty"`
	AuthorizationCode            string   `xml:"AuthorizationCode,omitempty"`
	AuthorizationCodeExpiredTime int64    `xml:"AuthorizationCodeExpiredTime,omitempty"`
	PreAuthCode                  string   `xml:"PreAuthCode,omitempty"`
}

// PushTicket mints a component_verify_ticket for the platform now and
// pushes it to its URL (whatever PushFault.Stopped says). The ticket is
// valid for TicketTTL even if the push fails. The returned Push is also
// in Pushes.
func (s *Sim) PushTicket(ctx context.Context, componentAppID string) (Push, error) {
	return s.pushTicket(ctx, componentAppID, false)
}

// errStopped is returned for a scheduled push of a stopped platform.
var errStopped = errors.New("pushes are stopped")

// pushTicket is PushTicket; a scheduled push is dropped if the platform's
// pushes were stopped since it was planned.
func (s *Sim) pushTicket(ctx context.Context, componentAppID string, scheduled bool) (Push, error) {
	s.mu.Lock()
	pl := s.platforms[componentAppID]
	if pl == nil {
		s.mu.Unlock()
		return Push{}, fmt.Errorf("no platform %q", componentAppID)
	}
	if scheduled && pl.fault.Stopped {
		s.mu.Unlock()
		return Push{}, errStopped
	}
	now := s.now()
	ticket := s.randomValueLocked("ticket@@@")
	pl.tickets[ticket] = now
	ev := eventXML{AppID: componentAppID, CreateTime: now.Unix(), InfoType: wxcrypt.InfoVerifyTicket, ComponentVerifyTicket: ticket}
	s.mu.Unlock()
	return s.push(ctx, componentAppID, ev)
}

// push encrypts ev with the platform's key (or a wrong one), signs it
// and POSTs it to the platform's URL, then records the outcome.
func (s *Sim) push(ctx context.Context, componentAppID string, ev eventXML) (Push, error) {
	s.mu.Lock()
	pl := s.platforms[componentAppID]
	cfg, crypter, fault := pl.cfg, pl.crypter, pl.fault
	nonce := strconv.FormatUint(uint64(s.rng.Uint32()), 10)
	var wrongKey string
	if fault.WrongKey {
		wrongKey = s.randomKeyLocked()
	}
	s.mu.Unlock()

	p := Push{
		At: time.Unix(ev.CreateTime, 0), Component: componentAppID, InfoType: ev.InfoType,
		AuthorizerAppID: ev.AuthorizerAppid, Ticket: ev.ComponentVerifyTicket, Code: ev.AuthorizationCode,
		WrongKey: fault.WrongKey, BadSignature: fault.BadSignature,
	}
	err := func() error {
		if cfg.PushURL == "" {
			return errors.New("platform has no push URL")
		}
		msg, err := xml.Marshal(ev)
		if err != nil {
			return err
		}
		if fault.WrongKey {
			if crypter, err = wxcrypt.New(wxcrypt.Config{Token: cfg.Token, AppID: cfg.AppID, Key: wrongKey}); err != nil {
				return err
			}
		}
		ts := strconv.FormatInt(ev.CreateTime, 10)
		body, sig, err := crypter.Seal(msg, ts, nonce)
		if err != nil {
			return err
		}
		if fault.BadSignature {
			sig = strings.Repeat("0", len(sig))
		}
		q := url.Values{
			"signature": {plainSignature(cfg.Token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce},
			"encrypt_type": {"aes"}, "msg_signature": {sig},
		}
		target := cfg.PushURL
		if strings.Contains(target, "?") {
			target += "&" + q.Encode()
		} else {
			target += "?" + q.Encode()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "text/xml")
		resp, err := s.cfg.PushClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		ans, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		p.Status, p.Answer = resp.StatusCode, strings.TrimSpace(string(ans))
		return nil
	}()
	if err != nil {
		p.Err = err.Error()
	}
	s.mu.Lock()
	s.pushes = append(s.pushes, p)
	s.mu.Unlock()
	if err != nil {
		return p, fmt.Errorf("push %s to platform %s: %w", ev.InfoType, componentAppID, err)
	}
	return p, nil
}

// plainSignature is the signature query parameter of every WeChat push:
// sha1 of the sorted token, timestamp and nonce.
func plainSignature(token, timestamp, nonce string) string {
	parts := []string{token, timestamp, nonce}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

// wakePushes makes RunPushes re-plan its schedule.
func (s *Sim) wakePushes() {
	select {
	case s.pushWake <- struct{}{}:
	default:
	}
}

// RunPushes pushes each platform's ticket on its schedule (Platform.
// TicketEvery, real time; the first push right after AddPlatform) until
// ctx ends, and returns nil then. A platform whose pushes are stopped or
// that has no PushURL is skipped. Pushes are made one at a time. Run it
// once per Sim; Server runs it.
func (s *Sim) RunPushes(ctx context.Context) error {
	for {
		due, wait := s.duePushes(time.Now())
		for _, id := range due {
			if ctx.Err() != nil {
				return nil
			}
			_, _ = s.pushTicket(ctx, id, true) // recorded in Pushes
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-s.pushWake:
			t.Stop()
		}
	}
}

// duePushes returns the platforms whose push is due at now, advancing
// their schedule, and how long until the next one.
func (s *Sim) duePushes(now time.Time) ([]string, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []string
	wait := time.Hour
	for id, pl := range s.platforms {
		if pl.cfg.PushURL == "" || pl.cfg.TicketEvery < 0 || pl.fault.Stopped {
			continue
		}
		if !now.Before(pl.nextPush) {
			due = append(due, id)
			pl.nextPush = now.Add(pl.cfg.TicketEvery)
		}
		wait = min(wait, pl.nextPush.Sub(now))
	}
	sort.Strings(due)
	return due, max(wait, time.Millisecond)
}
