package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Status is a replica's view of the cluster, the answer of GET /v1/status.
type Status struct {
	Node        string       `json:"node"`
	Leader      string       `json:"leader"`
	Ready       bool         `json:"ready"`
	EtcdError   string       `json:"etcd_error,omitempty"`
	Replicas    []Replica    `json:"replicas"`
	Credentials []CredStatus `json:"credentials"`
}

// Replica is one live replica in Status.
type Replica struct {
	Node      string    `json:"node"`
	API       string    `json:"api"`
	Candidate bool      `json:"candidate"`
	Started   time.Time `json:"started"`
}

// CredStatus is one credential (an app's token or ticket) in Status.
type CredStatus struct {
	Cred         string    `json:"cred"`
	App          string    `json:"app"`
	Kind         string    `json:"kind"`
	Seq          uint64    `json:"seq"`
	FetchedAt    time.Time `json:"fetched_at,omitzero"`
	AgeSeconds   int64     `json:"age_seconds"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	NextRefresh  time.Time `json:"next_refresh,omitzero"`
	Usable       bool      `json:"usable"`
	FetchesToday int       `json:"fetches_today"`
	Budget       int       `json:"budget,omitempty"`
	Blocked      string    `json:"blocked,omitempty"`
	BlockedTill  time.Time `json:"blocked_till,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	InFlight     bool      `json:"fetch_in_flight"`
}

// Status returns the replica's status. It is never cached.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	if err := c.call(ctx, http.MethodGet, "/v1/status", nil, &st); err != nil {
		return Status{}, fmt.Errorf("get status: %w", err)
	}
	return st, nil
}

// Signature is what wx.config needs for one page, as the replica signs it
// with the app's jsapi ticket.
type Signature struct {
	AppID     string `json:"appId"`
	Timestamp int64  `json:"timestamp"`
	NonceStr  string `json:"nonceStr"`
	Signature string `json:"signature"`
	URL       string `json:"url"` // the page URL signed
}

// Signature asks the replica to sign pageURL (the page's full URL without
// its #fragment) for app's JS-SDK. It is never cached: each answer has a
// new nonce.
func (c *Client) Signature(ctx context.Context, app, pageURL string) (Signature, error) {
	var s Signature
	path := "/v1/apps/" + url.PathEscape(app) + "/jssdk/signature?url=" + url.QueryEscape(pageURL)
	if err := c.call(ctx, http.MethodGet, path, nil, &s); err != nil {
		return Signature{}, fmt.Errorf("sign page for %s: %w", app, err)
	}
	return s, nil
}
