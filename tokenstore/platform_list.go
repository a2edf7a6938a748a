package tokenstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Reads of a platform's authorizers in bulk, for the API's list and for
// `wxtoken platform recover`.

// Authorizer is an authorizer as listed: its state (from the events) and
// its info (from the leader's code exchange), if stored.
type Authorizer struct {
	State AuthorizerState
	Info  *AuthorizerInfo // nil when none is stored
}

// Authorizers returns up to limit of platform's authorizers with a stored
// state, in appid order, starting after the appid after ("" from the
// first), each with its info. When more follow, next is the appid to
// list after for them; else "". Both are read at one revision: two range
// reads, bounded by limit (and by the infos stored between the first and
// the last appid of the page). A state or info that does not decode is
// skipped.
func (s *Store) Authorizers(ctx context.Context, platform, after string, limit int) (page []Authorizer, next string, err error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("list authorizers of %s: limit %d is not positive", platform, limit)
	}
	sp := s.keys.Platform(platform) + "authorizer/"
	from := sp
	if after != "" {
		from = sp + after + "\x00"
	}
	resp, err := s.c.Get(ctx, from, clientv3.WithRange(clientv3.GetPrefixRangeEnd(sp)), clientv3.WithLimit(int64(limit)))
	if err != nil {
		return nil, "", fmt.Errorf("list authorizers of %s: %w", platform, err)
	}
	if resp.More && len(resp.Kvs) > 0 {
		next = strings.TrimPrefix(string(resp.Kvs[len(resp.Kvs)-1].Key), sp)
	}
	page = make([]Authorizer, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var st AuthorizerState
		if json.Unmarshal(kv.Value, &st) == nil && ValidAuthorizer(st.AppID) && string(kv.Key) == sp+st.AppID {
			page = append(page, Authorizer{State: st})
		}
	}
	if len(page) == 0 {
		return page, next, nil
	}
	ip := s.keys.AuthorizerInfos(platform)
	infos, err := s.c.Get(ctx, ip+page[0].State.AppID, clientv3.WithRange(ip+page[len(page)-1].State.AppID+"\x00"),
		clientv3.WithRev(resp.Header.Revision))
	if err != nil {
		return nil, "", fmt.Errorf("list authorizer infos of %s: %w", platform, err)
	}
	i := 0
	for _, kv := range infos.Kvs { // both in key order: a merge
		appID := strings.TrimPrefix(string(kv.Key), ip)
		for i < len(page) && page[i].State.AppID < appID {
			i++
		}
		if i == len(page) {
			break
		}
		var info AuthorizerInfo
		if page[i].State.AppID == appID && json.Unmarshal(kv.Value, &info) == nil {
			page[i].Info = &info
		}
	}
	return page, next, nil
}

// RefreshState is what a stored refresh token says, without its value.
type RefreshState struct {
	Rev        int64 // the key's mod revision
	Rejected   bool  // WeChat answered 61023 to it
	Unreadable bool  // it does not open (another key, forged or damaged)
}

// RefreshStates returns, by authorizer appid, the state of every refresh
// token stored for platform's authorizers, in one range read. The values
// are opened to judge them and dropped.
func (s *Store) RefreshStates(ctx context.Context, platform string) (map[string]RefreshState, error) {
	sl := s.codec.sealing.Sealer
	if sl == nil {
		return nil, ErrNoSealing
	}
	prefix := s.keys.Refresh(AuthorizerCred(platform, ""))
	resp, err := s.c.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("read refresh tokens of %s: %w", platform, err)
	}
	out := make(map[string]RefreshState, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		appID := strings.TrimPrefix(string(kv.Key), prefix)
		if !ValidAuthorizer(appID) {
			continue
		}
		st := RefreshState{Rev: kv.ModRevision}
		var t RefreshToken
		plain, err := sl.Open(kv.Value, kv.Key)
		switch {
		case err != nil || json.Unmarshal(plain, &t) != nil || t.Value == "":
			st.Unreadable = true
		default:
			st.Rejected = t.Rejected
		}
		out[appID] = st
	}
	return out, nil
}

// Record reads cred's published record from etcd (not the cache); ok is
// false if there is none. An error wrapping ErrRecordUnreadable means one
// is stored but does not open.
func (s *Store) Record(ctx context.Context, cred string) (rec Record, ok bool, err error) {
	key := s.keys.Cred(cred)
	resp, err := s.c.Get(ctx, key)
	if err != nil {
		return Record{}, false, fmt.Errorf("read %s: %w", cred, err)
	}
	if len(resp.Kvs) == 0 {
		return Record{}, false, nil
	}
	r, err := s.codec.decodeRecord(key, resp.Kvs[0].Value)
	if err != nil {
		return Record{}, false, err
	}
	return *r, true, nil
}
