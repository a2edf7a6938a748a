package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPlatformErrors: the replica's errors are *Error with its code, and
// name the platform and the appid but never a token; errors are not
// cached; empty names are refused without a request.
func TestPlatformErrors(t *testing.T) {
	f := newFakeAPI(t, "saas")
	c := newClient(t, f.srv.URL, nil)
	ctx := context.Background()
	tok, err := c.AuthorizerToken(ctx, "saas", "wxgone")
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.revoked["authorizer/saas/wxgone"] = true
	f.mu.Unlock()

	fresh := newClient(t, f.srv.URL, nil)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	gone := newClient(t, down.URL, nil)
	check := func(what string, err error, status int, code string, names ...string) {
		t.Helper()
		var ae *Error
		switch {
		case code == "" && !errors.Is(err, ErrUnreachable):
			t.Errorf("%s: got %v, want ErrUnreachable", what, err)
		case code != "" && (!errors.As(err, &ae) || ae.Status != status || ae.Code != code):
			t.Errorf("%s: got %v, want a %d %s *Error", what, err, status, code)
		case err != nil && strings.Contains(err.Error(), tok.AccessToken):
			t.Errorf("%s: the error holds the token: %v", what, err)
		}
		for _, n := range names {
			if err != nil && !strings.Contains(err.Error(), n) {
				t.Errorf("%s: the error does not name %s: %v", what, n, err)
			}
		}
	}
	for range 2 { // not cached: each asks
		_, err = fresh.AuthorizerToken(ctx, "saas", "wxgone")
		check("AuthorizerToken(revoked)", err, 404, CodeUnauthorizedAuthorizer, "saas", "wxgone")
	}
	if gets, _ := f.requests("authorizer/saas/wxgone"); gets != 3 {
		t.Errorf("reads of the revoked authorizer: got %d, want 3 (errors are not cached)", gets)
	}
	// The client that cached the token serves it while fresh, and learns
	// of the revocation when it reports it.
	if got, err := c.AuthorizerToken(ctx, "saas", "wxgone"); err != nil || got.AccessToken != tok.AccessToken {
		t.Errorf("AuthorizerToken(revoked, cached): got %q, %v; want the cached token", got.AccessToken, err)
	}
	_, err = c.InvalidateAuthorizer(ctx, "saas", "wxgone", tok.AccessToken)
	check("InvalidateAuthorizer(revoked)", err, 404, CodeUnauthorizedAuthorizer, "saas", "wxgone")
	_, err = c.ComponentToken(ctx, "nope")
	check("ComponentToken(nope)", err, 404, CodeUnknownPlatform, "nope")
	_, err = c.InvalidateComponent(ctx, "nope", "dead-token-value")
	check("InvalidateComponent(nope)", err, 404, CodeUnknownPlatform, "nope")
	if err != nil && strings.Contains(err.Error(), "dead-token-value") {
		t.Errorf("InvalidateComponent: the error holds the reported token: %v", err)
	}
	_, err = c.Authorizers(ctx, "nope", "", 0)
	check("Authorizers(nope)", err, 404, CodeUnknownPlatform, "nope")
	_, err = c.Authorizers(ctx, "saas", "", -1)
	check("Authorizers(limit -1)", err, 400, CodeBadRequest, "saas")
	_, err = c.Preauth(ctx, "saas", "ftp://example.com/cb")
	check("Preauth(ftp)", err, 400, CodeBadRequest, "saas")

	_, err = gone.ComponentToken(ctx, "saas")
	check("ComponentToken(down)", err, 0, "", "saas")
	_, err = gone.AuthorizerToken(ctx, "saas", "wxauth01")
	check("AuthorizerToken(down)", err, 0, "", "saas", "wxauth01")
	_, err = gone.Authorizers(ctx, "saas", "", 0)
	check("Authorizers(down)", err, 0, "", "saas")
	_, err = gone.Preauth(ctx, "saas", "https://example.com/cb")
	check("Preauth(down)", err, 0, "", "saas")

	before, _ := f.seenSoFar()
	for what, call := range map[string]func() error{
		"ComponentToken(\"\")":          func() error { _, err := c.ComponentToken(ctx, ""); return err },
		"AuthorizerToken(\"\", id)":     func() error { _, err := c.AuthorizerToken(ctx, "", "wxauth01"); return err },
		"AuthorizerToken(p, \"\")":      func() error { _, err := c.AuthorizerToken(ctx, "saas", ""); return err },
		"InvalidateComponent(\"\")":     func() error { _, err := c.InvalidateComponent(ctx, "", "t"); return err },
		"InvalidateAuthorizer(p, \"\")": func() error { _, err := c.InvalidateAuthorizer(ctx, "saas", "", "t"); return err },
	} {
		if err := call(); err == nil {
			t.Errorf("%s: got nil error, want one", what)
		}
	}
	if after, _ := f.seenSoFar(); len(after) != len(before) {
		t.Errorf("empty names made %d requests, want none", len(after)-len(before))
	}
}

// TestPlatformPathsEscaped: names travel as one path segment each, and
// after as a query value, whatever they hold.
func TestPlatformPathsEscaped(t *testing.T) {
	const plat, appid = "sa/as?", "wx 1/../2#"
	f := newFakeAPI(t, plat)
	c := newClient(t, f.srv.URL, nil)
	ctx := context.Background()
	if _, err := c.ComponentToken(ctx, plat); err != nil {
		t.Fatal(err)
	}
	tok, err := c.AuthorizerToken(ctx, plat, appid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.InvalidateAuthorizer(ctx, plat, appid, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authorizers(ctx, plat, "a&limit=1", 2); err != nil {
		t.Fatal(err)
	}
	want := []string{plat + "|", plat + "|" + appid, plat + "|" + appid, plat + "|?after=a%26limit%3D1&limit=2"}
	if seen, _ := f.seenSoFar(); !slices.Equal(seen, want) {
		t.Errorf("the replica saw %q, want %q", seen, want)
	}
}

func TestAuthorizersPages(t *testing.T) {
	f := newFakeAPI(t, "saas")
	c := newClient(t, f.srv.URL, nil)
	ctx := context.Background()
	first, err := c.Authorizers(ctx, "saas", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	want := []Authorizer{
		{AppID: "wxauth01", State: AuthorizerAuthorized, StateAt: at, AuthorizedAt: at.Add(time.Second), Scopes: []int{1, 15}},
		{AppID: "wxauth02", State: AuthorizerUnauthorized, StateAt: at, Scopes: []int{}},
	}
	if first.Platform != "saas" || first.NextAfter != "wxauth02" || fmt.Sprint(first.Authorizers) != fmt.Sprint(want) {
		t.Errorf("first page: got %+v, want %+v and next_after wxauth02", first, want)
	}
	last, err := c.Authorizers(ctx, "saas", first.NextAfter, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(last.Authorizers) != 1 || last.Authorizers[0].AppID != "wxauth03" || last.NextAfter != "" {
		t.Errorf("last page: got %+v, want wxauth03 alone and no next_after", last)
	}
	all, err := c.Authorizers(ctx, "saas", "", 0)
	if err != nil || len(all.Authorizers) != 3 || all.NextAfter != "" {
		t.Errorf("no limit: got %+v, %v; want all 3 in one page", all, err)
	}
	if seen, _ := f.seenSoFar(); seen[len(seen)-1] != "saas|?" {
		t.Errorf("no limit sent %q, want no query", seen[len(seen)-1])
	}
}

func TestPreauth(t *testing.T) {
	f := newFakeAPI(t, "saas")
	c := newClient(t, f.srv.URL, nil)
	p, err := c.Preauth(context.Background(), "saas", "https://saas.example.com/authorized?x=1")
	if err != nil {
		t.Fatal(err)
	}
	if p.PreAuthCode != "preauthcode@@@secret" || p.ExpiresIn != 1800 || !strings.Contains(p.AuthURL, "pre_auth_code=preauthcode%40%40%40secret") {
		t.Errorf("Preauth: got %q, %d, %q", p.PreAuthCode, p.ExpiresIn, p.AuthURL)
	}
	_, bodies := f.seenSoFar()
	if want := "map[redirect_uri:https://saas.example.com/authorized?x=1]"; len(bodies) != 1 || bodies[0] != want {
		t.Errorf("bodies sent: %q, want %q", bodies, want)
	}
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p)} {
		if strings.Contains(s, "preauthcode") {
			t.Errorf("Preauth printed holds the code: %s", s)
		}
	}
}
