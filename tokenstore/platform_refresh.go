package tokenstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// An Open Platform third-party platform's credentials are ordinary
// credentials of the leader's loop (records, intents, fences), named
//
//	<platform>/component            the component_access_token
//	<platform>/authorizer/<appid>   an authorizer_access_token
//
// An authorizer's refresh token lives beside its record, written in the
// same fenced transaction as the token it came with (PublishAuthorizer)
// and sealed like records:
//
//	P/refresh/<cred>                         RefreshToken (sealed value)
//	P/claimed/<cred>                         the code an exchange claimed (sealed), until its token is published
//	P/authorizer-info/<platform>/<appid>     AuthorizerInfo (plain JSON)

// ComponentCred is the credential name of platform's component token.
func ComponentCred(platform string) string { return platform + "/component" }

// AuthorizerCred is the credential name of an authorizer's token.
func AuthorizerCred(platform, appID string) string { return platform + "/authorizer/" + appID }

// ParseAuthorizerCred splits an authorizer credential name.
func ParseAuthorizerCred(cred string) (platform, appID string, ok bool) {
	platform, rest, ok := strings.Cut(cred, "/authorizer/")
	if !ok || platform == "" || strings.Contains(platform, "/") || !ValidAuthorizer(rest) {
		return "", "", false
	}
	return platform, rest, true
}

// Claimed is the key of the authorization code a fetch of cred claimed
// (BeginExchange), until its token is published.
func (k Keys) Claimed(cred string) string { return k.Prefix + "/claimed/" + cred }

// Refreshes is the prefix of every refresh token.
func (k Keys) Refreshes() string { return k.Prefix + "/refresh/" }

// Refresh is the key of a credential's refresh token.
func (k Keys) Refresh(cred string) string { return k.Refreshes() + cred }

// AuthorizerInfos is the prefix of one platform's authorizer infos.
func (k Keys) AuthorizerInfos(platform string) string {
	return k.Prefix + "/authorizer-info/" + platform + "/"
}

// AuthorizerInfo is the key of an authorizer's info.
func (k Keys) AuthorizerInfo(platform, appID string) string {
	return k.AuthorizerInfos(platform) + appID
}

// RefreshToken is an authorizer's authorizer_refresh_token as stored.
// String hides Value.
type RefreshToken struct {
	Value string `json:"value"`
	// Rejected is set when WeChat answered 61023 (refresh token invalid)
	// to it: it waits for a recovery (api_get_authorizer_list).
	Rejected bool `json:"rejected,omitempty"`
	// Source says where it came from: "query_auth", "refresh" or
	// "recover".
	Source    string    `json:"source"`
	UpdatedAt time.Time `json:"updated_at"`
	// Rev is the key's mod revision when read (0: absent); not stored.
	Rev int64 `json:"-"`
}

// Sources of a RefreshToken.
const (
	RefreshFromQueryAuth = "query_auth"
	RefreshFromRefresh   = "refresh"
	RefreshFromRecover   = "recover"
)

// String describes t without its value.
func (t RefreshToken) String() string {
	return fmt.Sprintf("tokenstore.RefreshToken{Source:%s Rejected:%t UpdatedAt:%s Rev:%d}", t.Source, t.Rejected, t.UpdatedAt.Format(time.RFC3339), t.Rev)
}

// GoString is String.
func (t RefreshToken) GoString() string { return t.String() }

// refreshOp is the put of t under cred's refresh key, sealed.
func (s *Store) refreshOp(cred string, t RefreshToken) (clientv3.Op, error) {
	sl := s.codec.sealing.Sealer
	if sl == nil {
		return clientv3.Op{}, ErrNoSealing
	}
	if t.Value == "" {
		return clientv3.Op{}, errors.New("tokenstore: empty refresh token")
	}
	key := s.keys.Refresh(cred)
	plain, err := json.Marshal(t)
	if err != nil {
		return clientv3.Op{}, err
	}
	sealed, err := sl.Seal(plain, []byte(key))
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("seal refresh token of %s: %w", cred, err)
	}
	return clientv3.OpPut(key, string(sealed)), nil
}

// RefreshToken returns cred's stored refresh token; ok is false if there
// is none. An error wrapping ErrRecordUnreadable means the stored value
// does not open.
func (s *Store) RefreshToken(ctx context.Context, cred string) (t RefreshToken, ok bool, err error) {
	sl := s.codec.sealing.Sealer
	if sl == nil {
		return RefreshToken{}, false, ErrNoSealing
	}
	key := s.keys.Refresh(cred)
	resp, err := s.c.Get(ctx, key)
	if err != nil {
		return RefreshToken{}, false, fmt.Errorf("read refresh token of %s: %w", cred, err)
	}
	if len(resp.Kvs) == 0 {
		return RefreshToken{}, false, nil
	}
	plain, err := sl.Open(resp.Kvs[0].Value, []byte(key))
	if err != nil || json.Unmarshal(plain, &t) != nil || t.Value == "" {
		return RefreshToken{Rev: resp.Kvs[0].ModRevision}, false, fmt.Errorf("%w: refresh token of %s", ErrRecordUnreadable, cred)
	}
	t.Rev = resp.Kvs[0].ModRevision
	return t, true, nil
}

// PutRefreshToken stores t as cred's refresh token if the key's mod
// revision is still rev (0: absent), fenced by f (nil: no fence, for
// `wxtoken platform recover` outside the leader). It returns ErrFenced
// when the key changed or the fence failed.
func (s *Store) PutRefreshToken(ctx context.Context, f Fence, cred string, t RefreshToken, rev int64) error {
	op, err := s.refreshOp(cred, t)
	if err != nil {
		return err
	}
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.keys.Refresh(cred)), "=", rev)}
	if f != nil {
		cmps = append(cmps, f.Cmp())
	}
	resp, err := s.c.Txn(ctx).If(cmps...).Then(op).Commit()
	if err != nil {
		return fmt.Errorf("store refresh token of %s: %w", cred, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("store refresh token of %s: %w", cred, ErrFenced)
	}
	return nil
}

// PublishAuthorizer is Publish of an authorizer's token with the refresh
// token it came with, in the same fenced transaction: a token is never
// published without its refresh token, nor the reverse. A claimed code
// goes with it: a token is out, so it is exchanged.
func (s *Store) PublishAuthorizer(ctx context.Context, f Fence, snap Snapshot, intentRev int64, rec Record, refresh RefreshToken) error {
	op, err := s.refreshOp(snap.Cred, refresh)
	if err != nil {
		return fmt.Errorf("publish %s: %w", snap.Cred, err)
	}
	return s.publish(ctx, f, snap, intentRev, rec, []clientv3.Op{op, clientv3.OpDelete(s.keys.Claimed(snap.Cred))})
}

// Revoke publishes the tombstone of an authorizer that unauthorized the
// platform (a Record with Revoked set and no value, seq above the
// snapshot's) and deletes its refresh token, info, intent and reports,
// fenced by f and the snapshot's record, intent and owner revisions:
// WeChat killed its tokens, so no unfinished call's window matters.
func (s *Store) Revoke(ctx context.Context, f Fence, snap Snapshot, node string, now time.Time) error {
	platform, appID, ok := ParseAuthorizerCred(snap.Cred)
	if !ok {
		return fmt.Errorf("revoke %s: not an authorizer", snap.Cred)
	}
	rec := Record{Cred: snap.Cred, Seq: snap.Seq() + 1, Node: node, FetchedAt: now, Revoked: true}
	recJSON, err := s.codec.encodeRecord(s.keys.Cred(snap.Cred), rec)
	if err != nil {
		return fmt.Errorf("revoke %s: %w", snap.Cred, err)
	}
	resp, err := s.c.Txn(ctx).If(
		f.Cmp(),
		clientv3.Compare(clientv3.ModRevision(s.keys.Cred(snap.Cred)), "=", snap.RecordRev),
		clientv3.Compare(clientv3.ModRevision(s.keys.Intent(snap.Cred)), "=", snap.IntentRev),
		s.ownerCmp(snap),
	).Then(
		clientv3.OpPut(s.keys.Cred(snap.Cred), recJSON),
		clientv3.OpDelete(s.keys.Intent(snap.Cred)),
		clientv3.OpDelete(s.keys.Refresh(snap.Cred)),
		clientv3.OpDelete(s.keys.Claimed(snap.Cred)),
		clientv3.OpDelete(s.keys.AuthorizerInfo(platform, appID)),
		clientv3.OpDelete(s.keys.CredReports(snap.Cred), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return fmt.Errorf("revoke %s: %w", snap.Cred, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("revoke %s: %w", snap.Cred, ErrFenced)
	}
	return nil
}

// AuthorizerInfo is what the platform knows of an authorizer beyond its
// token: the scopes granted (func_info ids) and when. Plain JSON.
type AuthorizerInfo struct {
	AppID        string    `json:"appid"`
	FuncInfo     []int     `json:"func_info"`
	AuthorizedAt time.Time `json:"authorized_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// PutAuthorizerInfo stores an authorizer's info, fenced by f (nil: none).
func (s *Store) PutAuthorizerInfo(ctx context.Context, f Fence, platform string, info AuthorizerInfo) error {
	val, err := json.Marshal(info)
	if err != nil {
		return err
	}
	txn := s.c.Txn(ctx)
	if f != nil {
		txn = txn.If(f.Cmp())
	}
	if _, err := txn.Then(clientv3.OpPut(s.keys.AuthorizerInfo(platform, info.AppID), string(val))).Commit(); err != nil {
		return fmt.Errorf("store info of %s/%s: %w", platform, info.AppID, err)
	}
	return nil
}
