package fetcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestPlatformRequests: each method posts JSON with the documented field
// names to its path, with the component token in the query.
func TestPlatformRequests(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		call   func(c *Client) error
		path   string
		token  string
		fields map[string]any
	}{
		{"component token", func(c *Client) error { _, err := c.ComponentToken(ctx, "wxC", "SEC", "TICK"); return err },
			"/cgi-bin/component/api_component_token", "",
			map[string]any{"component_appid": "wxC", "component_appsecret": "SEC", "component_verify_ticket": "TICK"}},
		{"start push ticket", func(c *Client) error { return c.StartPushTicket(ctx, "wxC", "SEC") },
			"/cgi-bin/component/api_start_push_ticket", "",
			map[string]any{"component_appid": "wxC", "component_secret": "SEC"}},
		{"pre-auth code", func(c *Client) error { _, err := c.CreatePreAuthCode(ctx, "CTOK", "wxC"); return err },
			"/cgi-bin/component/api_create_preauthcode", "CTOK",
			map[string]any{"component_appid": "wxC"}},
		{"query auth", func(c *Client) error { _, err := c.QueryAuth(ctx, "CTOK", "wxC", "CODE"); return err },
			"/cgi-bin/component/api_query_auth", "CTOK",
			map[string]any{"component_appid": "wxC", "authorization_code": "CODE"}},
		{"authorizer token", func(c *Client) error {
			_, err := c.AuthorizerToken(ctx, "CTOK", "wxC", "wxA", "REF")
			return err
		}, "/cgi-bin/component/api_authorizer_token", "CTOK",
			map[string]any{"component_appid": "wxC", "authorizer_appid": "wxA", "authorizer_refresh_token": "REF"}},
		{"authorizer list", func(c *Client) error { _, err := c.AuthorizerList(ctx, "CTOK", "wxC", 500, 500); return err },
			"/cgi-bin/component/api_get_authorizer_list", "CTOK",
			map[string]any{"component_appid": "wxC", "offset": 500.0, "count": 500.0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeWeChat(t, apiErr(99999)) // any answer: the request is what counts
			c := mustNew(t, testConfig(f, nil))
			_ = tc.call(c)
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != "POST" || r.path != tc.path || r.contentType != "application/json" {
				t.Errorf("request %s %s (%s), want POST %s (application/json)", r.method, r.path, r.contentType, tc.path)
			}
			q, _ := url.ParseQuery(r.query)
			if got := q.Get("component_access_token"); got != tc.token || (tc.token == "" && r.query != "") {
				t.Errorf("query %q, want component_access_token=%q only", r.query, tc.token)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(r.body), &got); err != nil || !reflect.DeepEqual(got, tc.fields) {
				t.Errorf("body %s, want %v", r.body, tc.fields)
			}
		})
	}
}

func TestPlatformAnswers(t *testing.T) {
	ctx := context.Background()
	t.Run("query auth", func(t *testing.T) {
		// The example answer of authorization_info.html, shortened.
		f := newFakeWeChat(t, ok200(`{"authorization_info":{"authorizer_appid":"wxf8b4f85f3a794e77","authorizer_access_token":"QXjUqNqfYVH0yBE1iI_7vuN","expires_in":7200,"authorizer_refresh_token":"dTo-YCXPL4llX-u1W1pPpnp8Hgm4wpJtlR6iV0doKdY","func_info":[{"funcscope_category":{"id":1}},{"funcscope_category":{"id":2}},{"funcscope_category":{"id":3}}]}}`))
		a, err := mustNew(t, testConfig(f, nil)).QueryAuth(ctx, "CTOK", "wxC", "CODE")
		if err != nil {
			t.Fatal(err)
		}
		want := Authorization{AuthorizerAppID: "wxf8b4f85f3a794e77", AccessToken: "QXjUqNqfYVH0yBE1iI_7vuN", ExpiresIn: 2 * time.Hour,
			RefreshToken: "dTo-YCXPL4llX-u1W1pPpnp8Hgm4wpJtlR6iV0doKdY", FuncInfo: []int{1, 2, 3}, Attempts: 1}
		if !reflect.DeepEqual(a, want) {
			t.Errorf("got %#v\nwant %#v", a, want)
		}
		if s := fmt.Sprintf("%v %+v %#v", a, a, a); strings.Contains(s, a.AccessToken) || strings.Contains(s, a.RefreshToken) {
			t.Errorf("printed Authorization shows a token: %s", s)
		}
	})
	t.Run("query auth without API scopes", func(t *testing.T) {
		f := newFakeWeChat(t, ok200(`{"authorization_info":{"authorizer_appid":"wxA","func_info":[]}}`))
		a, err := mustNew(t, testConfig(f, nil)).QueryAuth(ctx, "CTOK", "wxC", "CODE")
		if err != nil || a.AuthorizerAppID != "wxA" || a.AccessToken != "" || a.RefreshToken != "" {
			t.Fatalf("got %#v, %v", a, err)
		}
	})
	for _, tc := range []struct {
		name, body  string
		wantRefresh string
		rotated     bool
	}{
		{"rotated", `{"authorizer_access_token":"AT","expires_in":7200,"authorizer_refresh_token":"NEW"}`, "NEW", true},
		{"same", `{"authorizer_access_token":"AT","expires_in":7200,"authorizer_refresh_token":"OLD"}`, "OLD", false},
		{"absent", `{"authorizer_access_token":"AT","expires_in":7200}`, "OLD", false},
	} {
		t.Run("authorizer token "+tc.name, func(t *testing.T) {
			f := newFakeWeChat(t, ok200(tc.body))
			a, err := mustNew(t, testConfig(f, nil)).AuthorizerToken(ctx, "CTOK", "wxC", "wxA", "OLD")
			if err != nil || a.AccessToken != "AT" || a.RefreshToken != tc.wantRefresh || a.Rotated != tc.rotated {
				t.Fatalf("got %#v (refresh %q), %v; want refresh %q rotated %v", a, a.RefreshToken, err, tc.wantRefresh, tc.rotated)
			}
		})
	}
	t.Run("authorizer list", func(t *testing.T) {
		f := newFakeWeChat(t, ok200(`{"total_count":33,"list":[{"authorizer_appid":"a1","refresh_token":"r1","auth_time":1558000607},{"authorizer_appid":"a2","auth_time":1558000608}]}`))
		p, err := mustNew(t, testConfig(f, nil)).AuthorizerList(ctx, "CTOK", "wxC", 0, 100)
		want := AuthorizerPage{Total: 33, Attempts: 1, Authorizers: []AuthorizerEntry{
			{AppID: "a1", RefreshToken: "r1", AuthTime: time.Unix(1558000607, 0)},
			{AppID: "a2", AuthTime: time.Unix(1558000608, 0)},
		}}
		if err != nil || !reflect.DeepEqual(p, want) {
			t.Fatalf("got %+v, %v\nwant %+v", p, err, want)
		}
	})
	t.Run("authorizer list longer than asked", func(t *testing.T) {
		f := newFakeWeChat(t, ok200(`{"total_count":3,"list":[{"authorizer_appid":"a1"},{"authorizer_appid":"a2"}]}`))
		if _, err := mustNew(t, testConfig(f, nil)).AuthorizerList(ctx, "CTOK", "wxC", 0, 1); ClassOf(err) != Ambiguous {
			t.Fatalf("err = %v, want a bad response", err)
		}
	})
	t.Run("authorizer list bounds", func(t *testing.T) {
		f := newFakeWeChat(t)
		c := mustNew(t, testConfig(f, nil))
		for _, oc := range [][2]int{{0, 0}, {0, 501}, {-1, 10}} {
			if _, err := c.AuthorizerList(ctx, "CTOK", "wxC", oc[0], oc[1]); err == nil {
				t.Errorf("offset %d count %d: nil error", oc[0], oc[1])
			}
		}
		if f.callCount() != 0 {
			t.Errorf("%d calls made for invalid pages", f.callCount())
		}
	})
	t.Run("start push ticket", func(t *testing.T) {
		f := newFakeWeChat(t, apiErr(-1), ok200(`{"errcode":0,"errmsg":"in a normal state"}`))
		if err := mustNew(t, testConfig(f, nil)).StartPushTicket(ctx, "wxC", "SEC"); err != nil || f.callCount() != 2 {
			t.Fatalf("err %v after %d calls, want success on the second", err, f.callCount())
		}
	})
}

// TestPlatformErrorCodes: the codes a platform caller branches on.
func TestPlatformErrorCodes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		code                          int
		class                         Class
		host, ticket, refresh, authcd bool
	}{
		{61004, Permanent, true, false, false, false},
		{61005, Permanent, false, true, false, false},
		{61006, Permanent, false, true, false, false},
		{61009, Permanent, false, false, false, true},
		{61010, Permanent, false, false, false, true},
		{61011, Permanent, false, false, false, false},
		{61023, Permanent, false, false, true, false},
		{45009, Quota, false, false, false, false},
		{40001, TokenDead, false, false, false, false},
		{42001, TokenDead, false, false, false, false},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			f := newFakeWeChat(t, apiErr(tc.code), ok200(`{"authorizer_access_token":"AT","expires_in":7200}`))
			_, err := mustNew(t, testConfig(f, nil)).AuthorizerToken(ctx, "CTOK", "wxC", "wxA", "REF")
			var ae *APIError
			if !asAPIError(err, &ae) || ae.Code != tc.code || ae.Op != opAuthorizerToken {
				t.Fatalf("err = %v, want errcode %d of %s", err, tc.code, opAuthorizerToken)
			}
			if ClassOf(err) != tc.class || ae.HostSpecific() != tc.host || IsTicketError(err) != tc.ticket ||
				IsRefreshTokenInvalid(err) != tc.refresh || IsAuthCodeError(err) != tc.authcd {
				t.Errorf("class %v host %v ticket %v refresh %v code %v", ClassOf(err), ae.HostSpecific(),
					IsTicketError(err), IsRefreshTokenInvalid(err), IsAuthCodeError(err))
			}
			if f.callCount() != 1 {
				t.Errorf("%d calls, want 1: errcode %d is not retried", f.callCount(), tc.code)
			}
		})
	}
	// On the component token endpoint 40001 is a wrong secret, not a dead
	// token.
	f := newFakeWeChat(t, apiErr(40001))
	if _, err := mustNew(t, testConfig(f, nil)).ComponentToken(ctx, "wxC", "SEC", "T"); ClassOf(err) != Permanent {
		t.Errorf("component token 40001: class %v, want permanent", ClassOf(err))
	}
	for _, err := range []error{nil, fmt.Errorf("plain")} {
		if IsTicketError(err) || IsRefreshTokenInvalid(err) || IsAuthCodeError(err) {
			t.Errorf("helpers match %v", err)
		}
	}
}

func asAPIError(err error, target **APIError) bool {
	return err != nil && errors.As(err, target)
}
