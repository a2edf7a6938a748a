package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/wxtoken/wxtoken/chaos/checker"
)

// sim is the `wxtoken wechat-sim` process and a client of its admin API.
type sim struct {
	port int
	proc *proc
	hc   *http.Client
}

// newSim prepares the simulator; with a platform, it pushes to pushURL.
func newSim(sp *spawner, pp *ports, cfg *Config, pushURL string) (*sim, error) {
	port, err := pp.next()
	if err != nil {
		return nil, err
	}
	args := []string{"wechat-sim", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--token-ttl", cfg.Timing.TokenTTL.String(), "--overlap", cfg.Timing.Overlap.String()}
	for _, a := range cfg.apps {
		args = append(args, "--app", a.appID+":"+a.secret)
	}
	if cfg.platform != nil {
		args = append(args, cfg.platform.simArgs(pushURL, cfg.Timing)...)
	}
	return &sim{
		port: port,
		proc: newProc(sp, "wechat-sim", filepath.Join(cfg.Dir, "logs", "wechat-sim.log"), cfg.WxtokenBin, args...),
		hc:   &http.Client{Timeout: 5 * time.Second},
	}, nil
}

func (s *sim) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }
func (s *sim) url() string  { return "http://" + s.addr() }

// fault is the body of POST /_sim/fault.
type fault struct {
	Mode    string `json:"mode"`
	Latency string `json:"latency,omitempty"`
	Count   int    `json:"count,omitempty"`
	AppID   string `json:"appid,omitempty"`
	Kind    string `json:"kind,omitempty"` // one kind of call only, e.g. query_auth
}

func (s *sim) setFault(ctx context.Context, f fault) error {
	body, _ := json.Marshal(f)
	return s.do(ctx, http.MethodPost, "/_sim/fault", body, nil)
}

func (s *sim) clearFault(ctx context.Context) error {
	return s.do(ctx, http.MethodDelete, "/_sim/fault", nil, nil)
}

// faultMode is the mode of the fault in force ("" when none is: a
// counted fault has been used up).
func (s *sim) faultMode(ctx context.Context) (string, error) {
	var f fault
	err := s.do(ctx, http.MethodGet, "/_sim/fault", nil, &f)
	return f.Mode, err
}

// refusal is the body of POST /_sim/refuse.
type refusal struct {
	AppID string   `json:"appid"`
	IPs   []string `json:"ips,omitempty"`
	For   string   `json:"for,omitempty"`
}

// refuse makes the simulator answer 40164 to appID's token calls from ips
// (every caller if none) for d.
func (s *sim) refuse(ctx context.Context, appID string, ips []string, d time.Duration) error {
	body, _ := json.Marshal(refusal{AppID: appID, IPs: ips, For: d.String()})
	return s.do(ctx, http.MethodPost, "/_sim/refuse", body, nil)
}

func (s *sim) clearRefusals(ctx context.Context) error {
	return s.do(ctx, http.MethodDelete, "/_sim/refuse", nil, nil)
}

// useLatency is the body of POST /_sim/use_latency.
type useLatency struct {
	Latency string   `json:"latency,omitempty"`
	IPs     []string `json:"ips,omitempty"`
	Count   int      `json:"count,omitempty"`
}

// holdUses delays the next count getcallbackip calls from ips by d.
func (s *sim) holdUses(ctx context.Context, ips []string, d time.Duration, count int) error {
	body, _ := json.Marshal(useLatency{Latency: d.String(), IPs: ips, Count: count})
	return s.do(ctx, http.MethodPost, "/_sim/use_latency", body, nil)
}

// usesHeld reports whether the getcallbackip delay has been used up.
func (s *sim) usesHeld(ctx context.Context) (bool, error) {
	var u useLatency
	err := s.do(ctx, http.MethodGet, "/_sim/use_latency", nil, &u)
	return err == nil && u.Latency == "", err
}

func (s *sim) clearUseLatency(ctx context.Context) error {
	return s.do(ctx, http.MethodDelete, "/_sim/use_latency", nil, nil)
}

// classicToken fetches a classic token of appID with its secret straight
// from the simulator, as a program outside the cluster would.
func (s *sim) classicToken(ctx context.Context, appID, secret string) (string, error) {
	q := url.Values{"grant_type": {"client_credential"}, "appid": {appID}, "secret": {secret}}
	var a struct {
		AccessToken string `json:"access_token"`
		Errcode     int    `json:"errcode"`
	}
	// Errors never quote the URL: it holds the secret.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url()+"/cgi-bin/token?"+q.Encode(), nil)
	if err != nil {
		return "", errors.New("simulator token call: bad request")
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return "", errors.New("simulator token call: no answer")
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.AccessToken == "" {
		return "", fmt.Errorf("simulator token call: HTTP %d, errcode %d", resp.StatusCode, a.Errcode)
	}
	return a.AccessToken, nil
}

func (s *sim) ledger(ctx context.Context) ([]checker.Fetch, error) {
	var l []checker.Fetch
	err := s.do(ctx, http.MethodGet, "/_sim/ledger", nil, &l)
	return l, err
}

func (s *sim) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, s.url()+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("simulator %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("simulator %s %s: HTTP %d", method, path, resp.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("simulator %s %s: %w", method, path, err)
		}
	}
	return nil
}
