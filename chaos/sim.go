package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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

func newSim(sp *spawner, pp *ports, cfg *Config) (*sim, error) {
	port, err := pp.next()
	if err != nil {
		return nil, err
	}
	args := []string{"wechat-sim", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--token-ttl", cfg.Timing.TokenTTL.String(), "--overlap", cfg.Timing.Overlap.String()}
	for _, a := range cfg.apps {
		args = append(args, "--app", a.appID+":"+a.secret)
	}
	return &sim{
		port: port,
		proc: newProc(sp, "wechat-sim", filepath.Join(cfg.Dir, "logs", "wechat-sim.log"), cfg.WxtokenBin, args...),
		hc:   &http.Client{Timeout: 5 * time.Second},
	}, nil
}

func (s *sim) url() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

// fault is the body of POST /_sim/fault.
type fault struct {
	Mode    string `json:"mode"`
	Latency string `json:"latency,omitempty"`
	Count   int    `json:"count,omitempty"`
	AppID   string `json:"appid,omitempty"`
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
