package platformapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/platformapi"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestAuthorizersList: the list joins the states the events stored with
// the infos the leader stored, in appid order; an info without a state is
// not listed; pages chained by next_after list every authorizer once.
func TestAuthorizersList(t *testing.T) {
	e := newEnv(t)
	base := time.Unix(1_800_000_000, 0).UTC()
	const n = 25
	var ids []string
	for i := range n {
		id := fmt.Sprintf("wxauth%010d", i)
		ids = append(ids, id)
		st := tokenstore.AuthorizerAuthorized
		if i%5 == 4 {
			st = tokenstore.AuthorizerUnauthorized
		}
		e.state(id, st, base.Add(time.Duration(i)*time.Minute))
		if i%3 == 0 && st == tokenstore.AuthorizerAuthorized { // exchanged: the leader stored its info
			if err := e.store.PutAuthorizerInfo(ctx(t), nil, plat, tokenstore.AuthorizerInfo{AppID: id, FuncInfo: []int{1, i},
				AuthorizedAt: base.Add(time.Duration(i)*time.Minute + time.Second), UpdatedAt: base}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An info whose state is missing, between two listed appids.
	if err := e.store.PutAuthorizerInfo(ctx(t), nil, plat, tokenstore.AuthorizerInfo{AppID: "wxauth0000000003x", FuncInfo: []int{9}}); err != nil {
		t.Fatal(err)
	}

	list := func(query string) platformapi.AuthorizersResponse {
		t.Helper()
		a := e.do("GET", "/v1/platforms/"+plat+"/authorizers"+query, "")
		want(t, "list"+query, a, http.StatusOK, "")
		var resp platformapi.AuthorizersResponse
		if err := json.Unmarshal(a.body, &resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	all := list("")
	if all.Platform != plat || all.NextAfter != "" || len(all.Authorizers) != n {
		t.Fatalf("list: platform %q, next_after %q, %d authorizers; want %q, none, %d", all.Platform, all.NextAfter, len(all.Authorizers), plat, n)
	}
	for i, it := range all.Authorizers {
		at := base.Add(time.Duration(i) * time.Minute)
		w := platformapi.AuthorizerItem{AppID: ids[i], State: tokenstore.AuthorizerAuthorized, StateAt: at, AuthorizedAt: at, Scopes: []int{}}
		switch {
		case i%5 == 4:
			w.State, w.AuthorizedAt = tokenstore.AuthorizerUnauthorized, time.Time{}
		case i%3 == 0:
			w.AuthorizedAt, w.Scopes = at.Add(time.Second), []int{1, i}
		}
		if !it.StateAt.Equal(w.StateAt) || !it.AuthorizedAt.Equal(w.AuthorizedAt) || it.AppID != w.AppID || it.State != w.State || !slices.Equal(it.Scopes, w.Scopes) {
			t.Errorf("authorizer %d: got %+v, want %+v", i, it, w)
		}
	}

	var paged []string
	after := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not end")
		}
		resp := list(fmt.Sprintf("?limit=7&after=%s", after))
		for _, it := range resp.Authorizers {
			paged = append(paged, it.AppID)
		}
		if resp.NextAfter == "" {
			break
		}
		after = resp.NextAfter
	}
	if !slices.Equal(paged, ids) {
		t.Errorf("pages of 7: got %v, want %v", paged, ids)
	}

	for _, q := range []string{"?limit=0", "?limit=-1", "?limit=10001", "?limit=x", "?after=a/b", "?after=%00"} {
		want(t, "list"+q, e.do("GET", "/v1/platforms/"+plat+"/authorizers"+q, ""), http.StatusBadRequest, "bad_request")
	}
}
