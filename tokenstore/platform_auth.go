package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// AuthCode is an authorization code pushed with an authorized or
// updateauthorized event, waiting for the leader's single exchange
// (api_query_auth). It is sealed in etcd; String hides Code.
type AuthCode struct {
	Authorizer string    `json:"authorizer"`
	Code       string    `json:"code"`
	ExpiresAt  time.Time `json:"expires_at"`
	InfoType   string    `json:"info_type"`
	CreateTime time.Time `json:"create_time"` // the event's
	Node       string    `json:"node"`        // the replica that received it
}

// String describes c without its code.
func (c AuthCode) String() string {
	return fmt.Sprintf("tokenstore.AuthCode{Authorizer:%s InfoType:%s ExpiresAt:%s}", c.Authorizer, c.InfoType, c.ExpiresAt.Format(time.RFC3339))
}

// GoString is String.
func (c AuthCode) GoString() string { return c.String() }

// PutCode stores an authorization code at once, if it is not stored yet:
// a push repeated by WeChat, or delivered to two replicas, changes
// nothing (created false).
func (s *Store) PutCode(ctx context.Context, platform string, c AuthCode) (created bool, err error) {
	sl := s.codec.sealing.Sealer
	if sl == nil {
		return false, ErrNoSealing
	}
	if c.Code == "" || !ValidAuthorizer(c.Authorizer) {
		return false, errors.New("tokenstore: code without a value or a valid authorizer appid")
	}
	key := s.keys.PlatformCode(platform, c.Authorizer, c.Code)
	sealed, err := s.sealCode(key, c)
	if err != nil {
		return false, fmt.Errorf("code of %s: %w", platform, err)
	}
	resp, err := s.c.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, sealed)).
		Commit()
	if err != nil {
		return false, fmt.Errorf("store code of %s/%s: %w", platform, c.Authorizer, err)
	}
	return resp.Succeeded, nil
}

// Codes returns platform's stored authorization codes. A value that does
// not open is skipped and counted in unreadable.
func (s *Store) Codes(ctx context.Context, platform string) (codes []AuthCode, unreadable int, err error) {
	sl := s.codec.sealing.Sealer
	if sl == nil {
		return nil, 0, ErrNoSealing
	}
	resp, err := s.c.Get(ctx, s.keys.PlatformCodes(platform), clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("read codes of %s: %w", platform, err)
	}
	for _, kv := range resp.Kvs {
		plain, err := sl.Open(kv.Value, kv.Key)
		var c AuthCode
		if err != nil || json.Unmarshal(plain, &c) != nil || s.keys.PlatformCode(platform, c.Authorizer, c.Code) != string(kv.Key) {
			unreadable++
			continue
		}
		codes = append(codes, c)
	}
	return codes, unreadable, nil
}

// States of an authorizer.
const (
	AuthorizerAuthorized   = "authorized"
	AuthorizerUnauthorized = "unauthorized"
)

// AuthorizerState is what the events say of an authorizer: the state of
// the newest event (by CreateTime) and when it was made. It holds no
// secret and is plain JSON.
type AuthorizerState struct {
	AppID string    `json:"appid"`
	State string    `json:"state"` // AuthorizerAuthorized or AuthorizerUnauthorized
	At    time.Time `json:"at"`    // the event's CreateTime
	Node  string    `json:"node"`  // the replica that received it
}

// newerState reports whether in should replace cur: a later event wins;
// of two in the same second, unauthorized wins (it stops refreshes; a
// real re-authorization pushes again).
func newerState(cur, in AuthorizerState) bool {
	switch {
	case in.At.After(cur.At):
		return true
	case in.At.Equal(cur.At):
		return in.State == AuthorizerUnauthorized && cur.State != AuthorizerUnauthorized
	}
	return false
}

// PutAuthorizerState records st if it is newer than the stored state, by
// compare-and-swap, so that events handled out of order by several
// replicas leave the newest.
func (s *Store) PutAuthorizerState(ctx context.Context, platform string, st AuthorizerState) (stored bool, err error) {
	if !ValidAuthorizer(st.AppID) || (st.State != AuthorizerAuthorized && st.State != AuthorizerUnauthorized) {
		return false, errors.New("tokenstore: authorizer state without appid or with an unknown state")
	}
	key := s.keys.PlatformAuthorizer(platform, st.AppID)
	val, err := json.Marshal(st)
	if err != nil {
		return false, err
	}
	stored, err = s.putIfNewer(ctx, key, string(val), func(cur []byte) bool {
		var c AuthorizerState
		return json.Unmarshal(cur, &c) == nil && !newerState(c, st)
	})
	if err != nil {
		return false, fmt.Errorf("store authorizer %s/%s: %w", platform, st.AppID, err)
	}
	return stored, nil
}

// Authorizer returns the stored state of an authorizer; ok is false if
// there is none.
func (s *Store) Authorizer(ctx context.Context, platform, appID string) (st AuthorizerState, ok bool, err error) {
	resp, err := s.c.Get(ctx, s.keys.PlatformAuthorizer(platform, appID))
	if err != nil {
		return AuthorizerState{}, false, fmt.Errorf("read authorizer %s/%s: %w", platform, appID, err)
	}
	if len(resp.Kvs) == 0 {
		return AuthorizerState{}, false, nil
	}
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		return AuthorizerState{}, false, fmt.Errorf("authorizer %s/%s: malformed state", platform, appID)
	}
	return st, true, nil
}

// StoredCode is an authorization code with its etcd key and mod revision.
type StoredCode struct {
	AuthCode
	Key string
	Rev int64
}

// AuthorizerCodes returns the codes stored for one authorizer, oldest
// event first. A value that does not open is skipped and counted in
// unreadable.
func (s *Store) AuthorizerCodes(ctx context.Context, platform, appID string) (codes []StoredCode, unreadable int, err error) {
	sl := s.codec.sealing.Sealer
	if sl == nil {
		return nil, 0, ErrNoSealing
	}
	resp, err := s.c.Get(ctx, s.keys.PlatformCodes(platform)+appID+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("read codes of %s/%s: %w", platform, appID, err)
	}
	for _, kv := range resp.Kvs {
		plain, err := sl.Open(kv.Value, kv.Key)
		var c AuthCode
		if err != nil || json.Unmarshal(plain, &c) != nil || s.keys.PlatformCode(platform, c.Authorizer, c.Code) != string(kv.Key) {
			unreadable++
			continue
		}
		codes = append(codes, StoredCode{AuthCode: c, Key: string(kv.Key), Rev: kv.ModRevision})
	}
	slices.SortFunc(codes, func(a, b StoredCode) int { return a.CreateTime.Compare(b.CreateTime) })
	return codes, unreadable, nil
}

// BeginExchange is BeginFetch for the exchange of an authorization code
// (api_query_auth): the same transaction moves the code from the event
// URL's keys to the credential's claimed code (Keys.Claimed), so that the
// pending codes never offer it again, whoever leads next. A successor of
// a leader that died mid-exchange finds the refresh token that exchange
// created in api_get_authorizer_list; only if WeChat lists none for the
// account (it never processed the call) may it present the claimed code
// again (ClaimedCode). The claimed code goes with the publish of the
// token (PublishAuthorizer). code may be the claimed code itself.
func (s *Store) BeginExchange(ctx context.Context, f Fence, snap Snapshot, in Intent, code StoredCode) (int64, error) {
	claimed := s.keys.Claimed(snap.Cred)
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(code.Key), "=", code.Rev)}
	if code.Key == claimed {
		return s.beginFetch(ctx, f, snap, in, 0, cmps, nil)
	}
	sealed, err := s.sealCode(claimed, code.AuthCode)
	if err != nil {
		return 0, err
	}
	return s.beginFetch(ctx, f, snap, in, 0, cmps,
		[]clientv3.Op{clientv3.OpDelete(code.Key), clientv3.OpPut(claimed, sealed)})
}

// sealCode is c's etcd value under key.
func (s *Store) sealCode(key string, c AuthCode) (string, error) {
	sl := s.codec.sealing.Sealer
	if sl == nil {
		return "", ErrNoSealing
	}
	plain, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	sealed, err := sl.Seal(plain, []byte(key))
	if err != nil {
		return "", fmt.Errorf("seal code of %s: %w", c.Authorizer, err)
	}
	return string(sealed), nil
}

// ClaimedCode returns the code a fetch of cred claimed and whose token is
// not published yet; ok is false if there is none (or it does not open).
func (s *Store) ClaimedCode(ctx context.Context, cred string) (sc StoredCode, ok bool, err error) {
	sl := s.codec.sealing.Sealer
	if sl == nil {
		return StoredCode{}, false, ErrNoSealing
	}
	key := s.keys.Claimed(cred)
	resp, err := s.c.Get(ctx, key)
	if err != nil {
		return StoredCode{}, false, fmt.Errorf("read claimed code of %s: %w", cred, err)
	}
	if len(resp.Kvs) == 0 {
		return StoredCode{}, false, nil
	}
	plain, err := sl.Open(resp.Kvs[0].Value, []byte(key))
	if err != nil || json.Unmarshal(plain, &sc.AuthCode) != nil {
		return StoredCode{}, false, nil
	}
	sc.Key, sc.Rev = key, resp.Kvs[0].ModRevision
	return sc, true, nil
}

// DropCode deletes a code that will not be exchanged (expired, or
// superseded by a newer one), fenced by f.
func (s *Store) DropCode(ctx context.Context, f Fence, code StoredCode) error {
	_, err := s.c.Txn(ctx).If(f.Cmp(), clientv3.Compare(clientv3.ModRevision(code.Key), "=", code.Rev)).
		Then(clientv3.OpDelete(code.Key)).Commit()
	if err != nil {
		return fmt.Errorf("drop code of %s: %w", code.Authorizer, err)
	}
	return nil
}

// AuthorizerStates returns every stored authorizer state of platform.
func (s *Store) AuthorizerStates(ctx context.Context, platform string) ([]AuthorizerState, error) {
	resp, err := s.c.Get(ctx, s.keys.Platform(platform)+"authorizer/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read authorizers of %s: %w", platform, err)
	}
	out := make([]AuthorizerState, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var st AuthorizerState
		if json.Unmarshal(kv.Value, &st) == nil && ValidAuthorizer(st.AppID) {
			out = append(out, st)
		}
	}
	return out, nil
}
