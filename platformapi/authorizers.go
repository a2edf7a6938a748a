package platformapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// MaxList is the most authorizers one answer of the list holds, and the
// default of ?limit: a platform of 10,000 authorizers is listed in one
// answer; a larger one in pages (?after=<next_after>).
const MaxList = 10000

// AuthorizersResponse is the answer of GET /v1/platforms/{name}/authorizers.
type AuthorizersResponse struct {
	Platform    string           `json:"platform"`
	Authorizers []AuthorizerItem `json:"authorizers"`
	// NextAfter, when set, is the appid to ask after (?after=) for the
	// next page.
	NextAfter string `json:"next_after,omitempty"`
}

// AuthorizerItem is one authorizer of the list.
type AuthorizerItem struct {
	AppID string `json:"appid"`
	// State is that of the newest event: "authorized" or "unauthorized".
	State   string    `json:"state"`
	StateAt time.Time `json:"state_at"` // the newest event's CreateTime
	// AuthorizedAt is when the leader exchanged the authorization (or,
	// before that, when the authorized event was made); absent once
	// unauthorized.
	AuthorizedAt time.Time `json:"authorized_at,omitzero"`
	// Scopes are the funcscope_category ids granted (func_info); empty
	// until the leader has exchanged the authorization code.
	Scopes []int `json:"scopes"`
}

func (h *Handler) authorizers(w http.ResponseWriter, r *http.Request) {
	p, ok := h.platform(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit := MaxList
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxList {
			api.WriteError(w, badRequest("limit must be 1 to "+strconv.Itoa(MaxList)))
			return
		}
		limit = n
	}
	after := q.Get("after")
	if after != "" && !tokenstore.ValidAuthorizer(after) {
		api.WriteError(w, badRequest("after must be an authorizer appid (letters, digits, _ and -)"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	page, next, err := h.store.Authorizers(ctx, p.Name, after, limit)
	if err != nil {
		h.log.Warn("list authorizers", "platform", p.Name, "err", err)
		api.WriteError(w, &api.Error{Status: http.StatusServiceUnavailable, Code: "etcd_unavailable", Message: "cannot read the authorizers: etcd unreachable"})
		return
	}
	resp := AuthorizersResponse{Platform: p.Name, Authorizers: make([]AuthorizerItem, 0, len(page))}
	for _, a := range page {
		it := AuthorizerItem{AppID: a.State.AppID, State: a.State.State, StateAt: a.State.At, Scopes: []int{}}
		if a.State.State == tokenstore.AuthorizerAuthorized {
			it.AuthorizedAt = a.State.At
		}
		if a.Info != nil {
			if !a.Info.AuthorizedAt.IsZero() {
				it.AuthorizedAt = a.Info.AuthorizedAt
			}
			if a.Info.FuncInfo != nil {
				it.Scopes = a.Info.FuncInfo
			}
		}
		resp.Authorizers = append(resp.Authorizers, it)
	}
	resp.NextAfter = next
	api.WriteJSON(w, http.StatusOK, resp)
}
