package platformapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/wxtoken/wxtoken/api"
	"github.com/wxtoken/wxtoken/fetcher"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// AuthPage is WeChat's authorization page, where an account's
// administrator scans and confirms the authorization (授权注册页面扫码授权):
// AuthPage?component_appid=&pre_auth_code=&redirect_uri=&auth_type=[&biz_appid=],
// per developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/Before_Develop/Authorization_Process_Technical_Description.html.
// WeChat then redirects to redirect_uri with auth_code and expires_in, and
// pushes the authorized event to the event URL.
const AuthPage = "https://mp.weixin.qq.com/cgi-bin/componentloginpage"

// Account types of the authorization page (auth_type).
const (
	AuthOfficialAccounts = 1 // official accounts only
	AuthMiniPrograms     = 2 // mini programs only
	AuthBoth             = 3 // both, the default
)

// maxRedirectURI bounds redirect_uri.
const maxRedirectURI = 1024

// PreAuthRequest is the body of POST /v1/platforms/{name}/preauth.
type PreAuthRequest struct {
	// RedirectURI is where WeChat sends the administrator after the
	// authorization: an absolute http or https URL without a fragment.
	RedirectURI string `json:"redirect_uri"`
	// AuthType is the account types the page offers: AuthOfficialAccounts,
	// AuthMiniPrograms or AuthBoth (0: AuthBoth).
	AuthType int `json:"auth_type,omitempty"`
	// BizAppID, if set, lets only that account authorize.
	BizAppID string `json:"biz_appid,omitempty"`
}

// PreAuthResponse is its answer. The pre-auth code is single use and
// lives ExpiresIn seconds.
type PreAuthResponse struct {
	PreAuthCode string `json:"pre_auth_code"`
	ExpiresIn   int64  `json:"expires_in"`
	AuthURL     string `json:"auth_url"`
}

// String describes r without its code.
func (r PreAuthResponse) String() string {
	return fmt.Sprintf("platformapi.PreAuthResponse{ExpiresIn:%d}", r.ExpiresIn)
}

// GoString is String.
func (r PreAuthResponse) GoString() string { return r.String() }

func (h *Handler) preauth(w http.ResponseWriter, r *http.Request) {
	p, ok := h.platform(w, r)
	if !ok {
		return
	}
	req, err := parsePreAuth(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		api.WriteError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	code, err := h.preAuthCode(ctx, p)
	if err != nil {
		api.WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, PreAuthResponse{
		PreAuthCode: code.Code, ExpiresIn: int64(code.ExpiresIn.Seconds()), AuthURL: AuthURL(p.ComponentAppID, code.Code, req),
	})
}

// preAuthCode asks WeChat for a pre-auth code with the component token in
// the cache. When WeChat says that token is dead, it reports it
// (compare-and-refresh, as a caller of the token route would) and asks
// once more with the new one.
func (h *Handler) preAuthCode(ctx context.Context, p Platform) (fetcher.PreAuthCode, error) {
	cred := tokenstore.ComponentCred(p.Name)
	tok, err := h.tokens.CredToken(componentApp(p), cred)
	if err != nil {
		return fetcher.PreAuthCode{}, err
	}
	code, err := h.preAuth.CreatePreAuthCode(ctx, tok.AccessToken, p.ComponentAppID)
	if err != nil && fetcher.ClassOf(err) == fetcher.TokenDead {
		h.log.Warn("WeChat refused the component token: reporting it", "platform", p.Name, "seq", tok.Seq, "err", err)
		next, rerr := h.tokens.InvalidateCred(ctx, componentApp(p), cred, tok.AccessToken)
		if rerr != nil {
			return fetcher.PreAuthCode{}, rerr
		}
		if next.Seq != tok.Seq {
			code, err = h.preAuth.CreatePreAuthCode(ctx, next.AccessToken, p.ComponentAppID)
		}
	}
	if err != nil {
		// fetcher's errors hold no token (its contract).
		h.log.Warn("create pre-auth code", "platform", p.Name, "class", fetcher.ClassOf(err), "err", err)
		msg := "WeChat did not answer api_create_preauthcode (" + fetcher.ClassOf(err).String() + ")"
		if ae, ok := errors.AsType[*fetcher.APIError](err); ok {
			msg = fmt.Sprintf("WeChat answered api_create_preauthcode with errcode %d: %s", ae.Code, ae.Msg)
		}
		return fetcher.PreAuthCode{}, &api.Error{Status: http.StatusBadGateway, Code: "wechat_error", Message: msg}
	}
	return code, nil
}

// parsePreAuth reads and checks a preauth body: one JSON object with the
// fields of PreAuthRequest and nothing else. Its errors are 400
// bad_request *api.Error.
func parsePreAuth(body io.Reader) (PreAuthRequest, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return PreAuthRequest{}, badRequest("the body is at most 4 KiB")
	}
	var req PreAuthRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return PreAuthRequest{}, badRequest(`body must be JSON {"redirect_uri":"https://...","auth_type":1|2|3,"biz_appid":"..."} (auth_type and biz_appid optional)`)
	}
	if _, extra := dec.Token(); extra != io.EOF {
		return PreAuthRequest{}, badRequest("data after the JSON object")
	}
	if err := checkRedirect(req.RedirectURI); err != nil {
		return PreAuthRequest{}, err
	}
	switch req.AuthType {
	case 0:
		req.AuthType = AuthBoth
	case AuthOfficialAccounts, AuthMiniPrograms, AuthBoth:
	default:
		return PreAuthRequest{}, badRequest("auth_type must be 1 (official accounts), 2 (mini programs) or 3 (both, the default)")
	}
	if req.BizAppID != "" && !tokenstore.ValidAuthorizer(req.BizAppID) {
		return PreAuthRequest{}, badRequest("biz_appid must be an appid (letters, digits, _ and -)")
	}
	return req, nil
}

// checkRedirect accepts an absolute http or https URL with a host, no
// user info and no fragment (WeChat appends its query to it).
func checkRedirect(s string) error {
	if s == "" {
		return badRequest("redirect_uri is required: where WeChat sends the administrator after the authorization")
	}
	if len(s) > maxRedirectURI {
		return badRequest("redirect_uri is longer than " + strconv.Itoa(maxRedirectURI) + " bytes")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return badRequest("redirect_uri is not a URL")
	case !strings.EqualFold(u.Scheme, "https") && !strings.EqualFold(u.Scheme, "http"):
		return badRequest("redirect_uri must be an absolute https:// (or http://) URL")
	case u.Host == "" || u.Hostname() == "" || u.Opaque != "":
		return badRequest("redirect_uri has no host")
	case u.User != nil:
		return badRequest("redirect_uri must not hold user info")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return badRequest("redirect_uri must not have a fragment (#): WeChat appends auth_code to its query")
	}
	return nil
}

// AuthURL is the link to WeChat's authorization page (AuthPage) for a
// pre-auth code, its parameters in the documented order.
func AuthURL(componentAppID, preAuthCode string, req PreAuthRequest) string {
	authType := req.AuthType
	if authType == 0 {
		authType = AuthBoth
	}
	var b strings.Builder
	b.WriteString(AuthPage)
	b.WriteString("?component_appid=" + url.QueryEscape(componentAppID))
	b.WriteString("&pre_auth_code=" + url.QueryEscape(preAuthCode))
	b.WriteString("&redirect_uri=" + url.QueryEscape(req.RedirectURI))
	b.WriteString("&auth_type=" + strconv.Itoa(authType))
	if req.BizAppID != "" {
		b.WriteString("&biz_appid=" + url.QueryEscape(req.BizAppID))
	}
	return b.String()
}
