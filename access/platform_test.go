package access

import (
	"net/http"
	"testing"
)

// TestGuardPlatformScopes: a platform is an app for scopes. A client
// scoped to apps [saas] may use saas's routes with the actions it holds,
// and none of another platform's; the event URL stays open to anyone (WeChat
// signs its pushes); the routes that may make the leader refresh or call
// WeChat carry the caller for the Limiter.
func TestGuardPlatformScopes(t *testing.T) {
	const (
		saasReader = "saas-reader-0123456789abcdef"
		saasAll    = "saas-all-0123456789abcdef"
		shopAll    = "shop-all-0123456789abcdef"
	)
	var caller string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller = ""
		if c, ok := CallerFrom(r.Context()); ok {
			caller = c.Name
		}
		w.WriteHeader(http.StatusOK)
	})
	g, err := New(next, Config{Clients: []Client{
		{Name: "saas-reader", TokenSHA256: sum(saasReader), Apps: []string{"saas"}, Allow: Read},
		{Name: "saas-all", TokenSHA256: sum(saasAll), Apps: []string{"saas"}, Allow: All},
		{Name: "shop-all", TokenSHA256: sum(shopAll), Apps: []string{"shop"}, Allow: All},
	}})
	if err != nil {
		t.Fatal(err)
	}
	const (
		authz      = "/v1/platforms/saas/authorizers/wxauth0000000001/token"
		otherAuthz = "/v1/platforms/other/authorizers/wxauth0000000001/token"
	)
	for _, tt := range []struct {
		name, method, target, token string
		want                        int
		caller                      string
	}{
		{"component token", "GET", "/v1/platforms/saas/token", saasReader, 200, ""},
		{"authorizer list", "GET", "/v1/platforms/saas/authorizers", saasReader, 200, ""},
		{"authorizer token", "GET", authz, saasReader, 200, ""},
		{"escaped platform", "GET", "/v1/platforms/sa%61s/token", saasReader, 200, ""},
		{"other platform", "GET", "/v1/platforms/other/token", saasReader, 403, ""},
		{"other platform's authorizer", "GET", otherAuthz, saasReader, 403, ""},
		{"an app's client", "GET", authz, shopAll, 403, ""},
		{"no credentials", "GET", authz, "", 401, ""},
		{"invalidate needs invalidate", "POST", authz + "/invalidate", saasReader, 403, ""},
		{"component invalidate needs invalidate", "POST", "/v1/platforms/saas/token/invalidate", saasReader, 403, ""},
		{"preauth needs preauth", "POST", "/v1/platforms/saas/preauth", saasReader, 403, ""},
		{"invalidate", "POST", authz + "/invalidate", saasAll, 200, "saas-all"},
		{"component invalidate", "POST", "/v1/platforms/saas/token/invalidate", saasAll, 200, "saas-all"},
		{"preauth", "POST", "/v1/platforms/saas/preauth", saasAll, 200, "saas-all"},
		{"preauth of another platform", "POST", "/v1/platforms/other/preauth", saasAll, 403, ""},
		{"events open", "POST", "/v1/platforms/saas/events?encrypt_type=aes", "", 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			caller = ""
			hdr := map[string]string{}
			if tt.method == "POST" && tt.want != 403 && tt.token != "" {
				hdr["Content-Type"] = "application/json"
			}
			w := do(g, tt.method, tt.target, tt.token, hdr)
			if w.Code != tt.want {
				t.Fatalf("%s %s: got %d %s, want %d", tt.method, tt.target, w.Code, w.Body, tt.want)
			}
			if caller != tt.caller {
				t.Errorf("caller in the request: got %q, want %q", caller, tt.caller)
			}
		})
	}
}
