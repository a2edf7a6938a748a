package wechattest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Fault modes for Fault.Mode.
const (
	FaultNone        = ""             // no fault
	FaultBusy        = "busy"         // errcode -1, system busy
	FaultMinuteLimit = "minute_limit" // errcode 45011
	FaultQuota       = "quota"        // errcode 45009
	FaultLatency     = "latency"      // wait Latency, then answer normally
	FaultTimeout     = "timeout"      // hold until the client gives up (at most 60 s)
	Fault5xx         = "5xx"          // HTTP 502 with an HTML body
	FaultBadJSON     = "badjson"      // HTTP 200 with truncated JSON
)

// timeoutHold is how long a FaultTimeout call is held at most.
const timeoutHold = 60 * time.Second

// Fault describes failures to inject into token and ticket calls
// (/cgi-bin/token, stable_token, gettoken, ticket/getticket, and the Open
// Platform's /cgi-bin/component/ calls); getcallbackip, pushes and the
// admin API are never faulted. A faulted call is recorded in the
// ledger with its errcode, or CodeNoAnswer for 5xx, badjson and timeout.
type Fault struct {
	// Mode is one of the Fault... constants. Unknown modes inject nothing.
	Mode string
	// Latency is the delay of FaultLatency. The call is answered (and a
	// token minted) after the delay even if the client gave up meanwhile,
	// as a real server would.
	Latency time.Duration
	// Count limits the fault to the next Count matching calls; 0 applies
	// it until ClearFault.
	Count int
	// AppID limits the fault to calls for this appid or corpid (for a
	// ticket, the owner of the access token; for api_authorizer_token and
	// api_query_auth, the authorizer; for other component calls, the
	// component appid); "" matches every call.
	AppID string
	// Kind limits the fault to calls of one kind (KindClassic,
	// KindQueryAuth, KindAuthorizer...: Fetch.Kind); "" matches every
	// kind.
	Kind string
}

// faultJSON is Fault on the wire, with Latency as a Go duration string
// ("2s"); a number of nanoseconds is accepted too.
type faultJSON struct {
	Mode    string          `json:"mode"`
	Latency json.RawMessage `json:"latency,omitempty"`
	Count   int             `json:"count,omitempty"`
	AppID   string          `json:"appid,omitempty"`
	Kind    string          `json:"kind,omitempty"`
}

// MarshalJSON encodes f as {"mode","latency":"2s","count","appid","kind"},
// the body of POST /_sim/fault.
func (f Fault) MarshalJSON() ([]byte, error) {
	fj := faultJSON{Mode: f.Mode, Count: f.Count, AppID: f.AppID, Kind: f.Kind}
	if f.Latency != 0 {
		fj.Latency, _ = json.Marshal(f.Latency.String())
	}
	return json.Marshal(fj)
}

// UnmarshalJSON decodes what MarshalJSON writes, and rejects unknown modes
// and malformed latencies.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var fj faultJSON
	if err := json.Unmarshal(b, &fj); err != nil {
		return err
	}
	if !validMode(fj.Mode) {
		return fmt.Errorf("unknown fault mode %q", fj.Mode)
	}
	var d time.Duration
	if len(fj.Latency) > 0 {
		var str string
		if err := json.Unmarshal(fj.Latency, &str); err == nil {
			if d, err = time.ParseDuration(str); err != nil {
				return fmt.Errorf("fault latency: %w", err)
			}
		} else if err := json.Unmarshal(fj.Latency, &d); err != nil {
			return fmt.Errorf("fault latency %s: want a duration such as \"2s\"", fj.Latency)
		}
	}
	*f = Fault{Mode: fj.Mode, Latency: d, Count: fj.Count, AppID: fj.AppID, Kind: fj.Kind}
	return nil
}

func validMode(m string) bool {
	switch m {
	case FaultNone, FaultBusy, FaultMinuteLimit, FaultQuota, FaultLatency, FaultTimeout, Fault5xx, FaultBadJSON:
		return true
	}
	return false
}

// SetFault replaces the injected fault with f. Setting no fault is
// ClearFault.
func (s *Sim) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
	s.faultOn = f.Mode != FaultNone && validMode(f.Mode)
	if !s.faultOn {
		close(s.faultGen)
		s.faultGen = make(chan struct{})
	}
}

// ClearFault stops injecting faults. Calls held by a latency or timeout
// fault end their hold at once: a latency call is then answered (and
// mints) as at the end of its hold, a timeout call gets no answer.
func (s *Sim) ClearFault() {
	s.SetFault(Fault{})
}

// takeFault consumes one application of the fault if it matches the
// call's kind and appID, and returns the channel that ClearFault closes.
func (s *Sim) takeFault(kind, appID string) (Fault, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.faultOn || (s.fault.AppID != "" && s.fault.AppID != appID) || (s.fault.Kind != "" && s.fault.Kind != kind) {
		return Fault{}, nil, false
	}
	f, gen := s.fault, s.faultGen
	if s.fault.Count > 0 {
		s.fault.Count--
		if s.fault.Count == 0 {
			s.faultOn = false
		}
	}
	return f, gen, true
}

// injectFault applies the current fault to c. It reports whether the call
// has been answered; after a latency fault it returns false and the caller
// answers normally.
func (s *Sim) injectFault(w http.ResponseWriter, r *http.Request, c call) bool {
	f, cleared, ok := s.takeFault(c.kind, c.appID)
	if !ok {
		return false
	}
	wecom := c.kind == KindWeCom
	switch f.Mode {
	case FaultLatency:
		// A real server answers after the delay whether or not the
		// client still listens: the token is minted at the end.
		s.wait(context.Background(), f.Latency, cleared)
		return false
	case FaultBusy:
		s.answerError(w, c, -1, "system error", "system busy")
	case FaultMinuteLimit:
		s.answerError(w, c, 45011, "api minute-quota reach limit  mustslower  retry next minute", "api minute-quota reach limit")
	case FaultQuota:
		s.answerError(w, c, 45009, "reach max api daily quota limit", "api freq out of limit")
	case Fault5xx:
		s.recordNoAnswer(c)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"))
	case FaultBadJSON:
		s.recordNoAnswer(c)
		w.Header().Set("Content-Type", "application/json; encoding=utf-8")
		body := `{"access_token":"`
		if wecom || c.kind == KindTicket {
			body = `{"errcode":0,"errmsg":"ok","`
		}
		_, _ = w.Write([]byte(body))
	case FaultTimeout:
		s.wait(r.Context(), timeoutHold, cleared)
		s.recordNoAnswer(c)
		w.WriteHeader(http.StatusGatewayTimeout)
	}
	return true
}

// answerError answers c with a WeChat error, in the style of its host.
func (s *Sim) answerError(w http.ResponseWriter, c call, code int, mpMsg, weMsg string) {
	s.mu.Lock()
	now := s.now()
	var rp reply
	if c.kind == KindWeCom {
		rp = s.weErrLocked(code, weMsg, c.caller, now)
	} else {
		rp = s.mpErrLocked(code, mpMsg, now)
	}
	s.recordLocked(c, rp)
	s.mu.Unlock()
	writeReply(w, rp)
}

func (s *Sim) recordNoAnswer(c call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordLocked(c, reply{errcode: CodeNoAnswer})
}

// wait blocks for d of real time, until ctx is done, until cleared is
// closed, or until the server closes.
func (s *Sim) wait(ctx context.Context, d time.Duration, cleared <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	case <-cleared:
	case <-s.release:
	}
}
