package fetcher

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// platformWire holds the fields of the Open Platform answers this package
// reads, beyond wireResponse.
type platformWire struct {
	PreAuthCode       string `json:"pre_auth_code"`
	ExpiresIn         int64  `json:"expires_in"`
	AuthorizationInfo *struct {
		AuthorizerAppID string `json:"authorizer_appid"`
		AccessToken     string `json:"authorizer_access_token"`
		ExpiresIn       int64  `json:"expires_in"`
		RefreshToken    string `json:"authorizer_refresh_token"`
		FuncInfo        []struct {
			Category struct {
				ID int `json:"id"`
			} `json:"funcscope_category"`
		} `json:"func_info"`
	} `json:"authorization_info"`
	AuthorizerAccessToken  string `json:"authorizer_access_token"`
	AuthorizerRefreshToken string `json:"authorizer_refresh_token"`
	TotalCount             *int   `json:"total_count"`
	List                   []struct {
		AppID        string `json:"authorizer_appid"`
		RefreshToken string `json:"refresh_token"`
		AuthTime     int64  `json:"auth_time"`
	} `json:"list"`
}

// decodePlatform checks status and errcode like decode, then reads the
// platform fields.
func decodePlatform(op string, status int, body []byte, red redactor) (*platformWire, error) {
	if _, err := decode(op, status, body, red); err != nil {
		return nil, err
	}
	var w platformWire
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, badJSON(body, err)
	}
	return &w, nil
}

// checkCredential validates a token-like value and its expires_in.
func checkCredential(field, value string, expiresIn int64) (time.Duration, error) {
	switch {
	case value == "":
		return 0, fmt.Errorf("%w: empty %s", ErrBadResponse, field)
	case strings.IndexFunc(value, badTokenRune) >= 0:
		return 0, fmt.Errorf("%w: %s has space or control characters", ErrBadResponse, field)
	case expiresIn <= 0:
		return 0, fmt.Errorf("%w: expires_in %d is not positive", ErrBadResponse, expiresIn)
	case expiresIn > maxExpiresIn:
		return 0, fmt.Errorf("%w: expires_in %d is too large", ErrBadResponse, expiresIn)
	}
	return time.Duration(expiresIn) * time.Second, nil
}

// checkValue validates a value that has no lifetime of its own.
func checkValue(field, value string) error {
	switch {
	case value == "":
		return fmt.Errorf("%w: empty %s", ErrBadResponse, field)
	case strings.IndexFunc(value, badTokenRune) >= 0:
		return fmt.Errorf("%w: %s has space or control characters", ErrBadResponse, field)
	}
	return nil
}

func parsePreAuthCode(op string, status int, body []byte, red redactor) (PreAuthCode, error) {
	w, err := decodePlatform(op, status, body, red)
	if err != nil {
		return PreAuthCode{}, err
	}
	ttl, err := checkCredential("pre_auth_code", w.PreAuthCode, w.ExpiresIn)
	if err != nil {
		return PreAuthCode{}, err
	}
	return PreAuthCode{Code: w.PreAuthCode, ExpiresIn: ttl}, nil
}

func parseAuthorization(op string, status int, body []byte, red redactor) (Authorization, error) {
	w, err := decodePlatform(op, status, body, red)
	if err != nil {
		return Authorization{}, err
	}
	ai := w.AuthorizationInfo
	if ai == nil {
		return Authorization{}, fmt.Errorf("%w: no authorization_info", ErrBadResponse)
	}
	if err := checkValue("authorizer_appid", ai.AuthorizerAppID); err != nil {
		return Authorization{}, err
	}
	a := Authorization{AuthorizerAppID: ai.AuthorizerAppID}
	if ai.AccessToken != "" {
		if a.ExpiresIn, err = checkCredential("authorizer_access_token", ai.AccessToken, ai.ExpiresIn); err != nil {
			return Authorization{}, err
		}
		a.AccessToken = ai.AccessToken
	}
	if ai.RefreshToken != "" {
		if err := checkValue("authorizer_refresh_token", ai.RefreshToken); err != nil {
			return Authorization{}, err
		}
		a.RefreshToken = ai.RefreshToken
	}
	for _, f := range ai.FuncInfo {
		a.FuncInfo = append(a.FuncInfo, f.Category.ID)
	}
	return a, nil
}

// parseAuthorizerToken reads api_authorizer_token's answer; sent is the
// refresh token of the request.
func parseAuthorizerToken(op string, status int, body []byte, red redactor, sent string) (AuthorizerToken, error) {
	w, err := decodePlatform(op, status, body, red)
	if err != nil {
		return AuthorizerToken{}, err
	}
	ttl, err := checkCredential("authorizer_access_token", w.AuthorizerAccessToken, w.ExpiresIn)
	if err != nil {
		return AuthorizerToken{}, err
	}
	a := AuthorizerToken{AccessToken: w.AuthorizerAccessToken, ExpiresIn: ttl, RefreshToken: sent}
	if w.AuthorizerRefreshToken != "" {
		if err := checkValue("authorizer_refresh_token", w.AuthorizerRefreshToken); err != nil {
			return AuthorizerToken{}, err
		}
		a.RefreshToken = w.AuthorizerRefreshToken
		a.Rotated = w.AuthorizerRefreshToken != sent
	}
	return a, nil
}

// parseAuthorizerPage reads one page of api_get_authorizer_list, of at
// most count lines.
func parseAuthorizerPage(op string, status int, body []byte, red redactor, count int) (AuthorizerPage, error) {
	w, err := decodePlatform(op, status, body, red)
	if err != nil {
		return AuthorizerPage{}, err
	}
	if w.TotalCount == nil || *w.TotalCount < 0 {
		return AuthorizerPage{}, fmt.Errorf("%w: no total_count", ErrBadResponse)
	}
	if len(w.List) > count {
		return AuthorizerPage{}, fmt.Errorf("%w: %d lines for a page of %d", ErrBadResponse, len(w.List), count)
	}
	p := AuthorizerPage{Total: *w.TotalCount, Authorizers: make([]AuthorizerEntry, 0, len(w.List))}
	for i, l := range w.List {
		if err := checkValue("authorizer_appid", l.AppID); err != nil {
			return AuthorizerPage{}, fmt.Errorf("list[%d]: %w", i, err)
		}
		if l.RefreshToken != "" {
			if err := checkValue("refresh_token", l.RefreshToken); err != nil {
				return AuthorizerPage{}, fmt.Errorf("list[%d]: %w", i, err)
			}
		}
		var at time.Time
		if l.AuthTime > 0 {
			at = time.Unix(l.AuthTime, 0)
		}
		p.Authorizers = append(p.Authorizers, AuthorizerEntry{AppID: l.AppID, RefreshToken: l.RefreshToken, AuthTime: at})
	}
	return p, nil
}
