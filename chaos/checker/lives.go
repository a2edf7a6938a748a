package checker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Oracle answers whether a token was valid at an instant. The simulator is
// one (SimOracle). Implementations must be safe for concurrent use.
type Oracle interface {
	Valid(ctx context.Context, token string, at time.Time) (bool, error)
}

// SimOracle asks a running WeChat simulator (`wxtoken wechat-sim`) through
// its admin API, GET /_sim/valid. It is safe for concurrent use.
type SimOracle struct {
	URL        string       // the simulator's base URL, e.g. http://127.0.0.1:9000
	HTTPClient *http.Client // default: a client with a 5 s timeout
}

var _ Oracle = (*SimOracle)(nil)

// Valid implements Oracle.
func (o *SimOracle) Valid(ctx context.Context, token string, at time.Time) (bool, error) {
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	q := url.Values{"token": {token}, "at": {at.Format(time.RFC3339Nano)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(o.URL, "/")+"/_sim/valid?"+q.Encode(), nil)
	if err != nil {
		return false, fmt.Errorf("ask simulator: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("ask simulator: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("ask simulator: HTTP %d", resp.StatusCode)
	}
	var v struct{ Valid bool }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return false, fmt.Errorf("ask simulator: %w", err)
	}
	return v.Valid, nil
}

// Lives finds when each token minted in fetches was valid, asking o. A
// token's life is one interval: from its mint to the earlier of its
// expiry and its invalidation. Issued is the ledger's answer time (the
// mint is at most a few microseconds earlier); End is found by bisection
// between the mint and the mint plus horizon (use at least the token TTL)
// to within a microsecond. Ask only after the run: an answer about an
// instant still to come may change.
func Lives(ctx context.Context, o Oracle, fetches []Fetch, horizon time.Duration) ([]Life, error) {
	seen := map[string]bool{}
	var lives []Life
	for _, f := range fetches {
		if f.Token == "" || seen[f.Token] {
			continue
		}
		seen[f.Token] = true
		end, err := lifeEnd(ctx, o, f.Token, f.At, horizon)
		if err != nil {
			return nil, err
		}
		lives = append(lives, Life{Token: f.Token, Kind: f.Kind, AppID: f.AppID, Issued: f.At, End: end})
	}
	return lives, nil
}

func lifeEnd(ctx context.Context, o Oracle, token string, issued time.Time, horizon time.Duration) (time.Time, error) {
	lo := issued
	ok, err := o.Valid(ctx, token, lo)
	if err != nil {
		return time.Time{}, err
	}
	if !ok {
		// Minted a hair before the ledger's instant and already replaced:
		// possible only for a token nobody could have served.
		return lo, nil
	}
	hi := issued.Add(horizon)
	if ok, err := o.Valid(ctx, token, hi); err != nil {
		return time.Time{}, err
	} else if ok {
		return time.Time{}, fmt.Errorf("token %s still valid %v after its mint: horizon too short", short(token), horizon)
	}
	for hi.Sub(lo) > time.Microsecond {
		mid := lo.Add(hi.Sub(lo) / 2)
		ok, err := o.Valid(ctx, token, mid)
		if err != nil {
			return time.Time{}, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi, nil
}
