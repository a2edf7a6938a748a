package fetcher

import "errors"

// Open Platform errcodes a caller branches on. Source: the return-code
// tables of component_access_token.html and pre_auth_code.html
// (61004, 61005, 61006, 61011) under
// developers.weixin.qq.com/doc/oplatform/Third-party_Platforms/2.0/api/ThirdParty/token/,
// and WeChat's answers quoted in its developer community: 61023
// "refresh_token is invalid" (answered by pointing to
// api_get_authorizer_list), 61010 "code is expired".
const (
	CodeIPNotRegistered     = 61004 // access clientip is not registered
	CodeTicketExpired       = 61005 // component ticket is expired
	CodeTicketInvalid       = 61006 // component ticket is invalid
	CodeAuthCodeInvalid     = 61009 // code is invalid
	CodeAuthCodeExpired     = 61010 // code is expired (or already used)
	CodeInvalidComponent    = 61011 // invalid component
	CodeRefreshTokenInvalid = 61023 // refresh_token is invalid
)

// codeOf returns the errcode of the *APIError in err's tree, or 0.
func codeOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) && ae != nil {
		return ae.Code
	}
	return 0
}

// IsTicketError reports whether err refuses the component_verify_ticket
// sent (61005 expired, 61006 invalid). Such errors are Permanent for that
// ticket: wait for a newer push (or call StartPushTicket), never retry the
// same ticket in a loop.
func IsTicketError(err error) bool {
	c := codeOf(err)
	return c == CodeTicketExpired || c == CodeTicketInvalid
}

// IsRefreshTokenInvalid reports whether err is 61023: the authorizer's
// refresh token is not (or no longer) valid. Recover it from
// AuthorizerList; retrying the same one fails again.
func IsRefreshTokenInvalid(err error) bool {
	return codeOf(err) == CodeRefreshTokenInvalid
}

// IsAuthCodeError reports whether err refuses the authorization code sent
// (61009 invalid, 61010 expired or already exchanged): the authorization
// must be repeated by the account's owner.
func IsAuthCodeError(err error) bool {
	c := codeOf(err)
	return c == CodeAuthCodeInvalid || c == CodeAuthCodeExpired
}
