package wechattest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// routeAdmin adds the JSON admin API under /_sim/ for out-of-process tests:
//
//	GET    /_sim/ledger                      -> [Fetch...]
//	GET    /_sim/valid?token=T&at=RFC3339Nano -> {"valid":bool} (at defaults to now)
//	GET    /_sim/current?appid=A&kind=K       -> {"token":"..."}
//	GET    /_sim/uses                        -> {"ok":n,"dead":n}
//	GET    /_sim/fault                       -> the fault in force
//	POST   /_sim/fault   {"mode","latency":"2s","count","appid","kind"} (see Fault.MarshalJSON)
//	DELETE /_sim/fault                       (held calls end at once)
//	GET    /_sim/refuse                      -> [{"appid","ips","until"}...]
//	POST   /_sim/refuse  {"appid","ips":["127.0.0.11"],"for":"40s"} (see Refusal; no "for": until cleared)
//	DELETE /_sim/refuse[?appid=A]
//	GET    /_sim/use_latency                 -> the getcallbackip delay in force
//	POST   /_sim/use_latency {"latency":"12s","ips":[...],"count":1} (see UseLatency)
//	DELETE /_sim/use_latency                 (held calls are judged at once)
//	POST   /_sim/apps    {"appid","secret"}
//	POST   /_sim/corps   {"corpid","secret"}
//	PUT    /_sim/allow_ips ["1.2.3.4", "10.0.0.0/8"]
//
// The Open Platform's routes are listed at routePlatformAdmin.
//
// Writes answer 204; bad requests 400 with {"error":"..."}.
func (s *Sim) routeAdmin(mux *http.ServeMux) {
	mux.HandleFunc("GET /_sim/ledger", func(w http.ResponseWriter, r *http.Request) {
		writeAdmin(w, s.Ledger())
	})
	mux.HandleFunc("GET /_sim/valid", func(w http.ResponseWriter, r *http.Request) {
		at := s.now()
		if v := r.URL.Query().Get("at"); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				adminError(w, fmt.Errorf("parse at: %w", err))
				return
			}
			at = t
		}
		writeAdmin(w, map[string]bool{"valid": s.Valid(r.URL.Query().Get("token"), at)})
	})
	mux.HandleFunc("GET /_sim/current", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		writeAdmin(w, map[string]string{"token": s.Current(q.Get("appid"), q.Get("kind"))})
	})
	mux.HandleFunc("GET /_sim/uses", func(w http.ResponseWriter, r *http.Request) {
		ok, dead := s.Uses()
		writeAdmin(w, map[string]int{"ok": ok, "dead": dead})
	})
	mux.HandleFunc("GET /_sim/fault", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		f := s.fault
		if !s.faultOn {
			f = Fault{}
		}
		s.mu.Unlock()
		writeAdmin(w, f)
	})
	mux.HandleFunc("POST /_sim/fault", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := decodeAdmin(w, r, &f); err != nil {
			adminError(w, err)
			return
		}
		s.SetFault(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/fault", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFault()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/refuse", func(w http.ResponseWriter, r *http.Request) {
		writeAdmin(w, append([]Refusal{}, s.Refusals()...))
	})
	mux.HandleFunc("POST /_sim/refuse", func(w http.ResponseWriter, r *http.Request) {
		var req refusalJSON
		if err := decodeAdmin(w, r, &req); err != nil {
			adminError(w, err)
			return
		}
		var d time.Duration
		if req.For != "" {
			var err error
			if d, err = time.ParseDuration(req.For); err != nil || d <= 0 {
				adminError(w, fmt.Errorf("refuse: want \"for\" a positive duration such as \"40s\": %q", req.For))
				return
			}
		}
		if err := s.Refuse(req.AppID, req.IPs, d); err != nil {
			adminError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/refuse", func(w http.ResponseWriter, r *http.Request) {
		s.ClearRefusals(r.URL.Query().Get("appid"))
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_sim/use_latency", func(w http.ResponseWriter, r *http.Request) {
		writeAdmin(w, s.UseLatencyNow())
	})
	mux.HandleFunc("POST /_sim/use_latency", func(w http.ResponseWriter, r *http.Request) {
		var u UseLatency
		if err := decodeAdmin(w, r, &u); err != nil {
			adminError(w, err)
			return
		}
		s.SetUseLatency(u)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/use_latency", func(w http.ResponseWriter, r *http.Request) {
		s.ClearUseLatency()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/apps", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ AppID, Secret string }
		if err := decodeAdmin(w, r, &req); err != nil || req.AppID == "" || req.Secret == "" {
			adminError(w, fmt.Errorf("want {\"appid\",\"secret\"}: %v", err))
			return
		}
		s.AddApp(req.AppID, req.Secret)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /_sim/corps", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ CorpID, Secret string }
		if err := decodeAdmin(w, r, &req); err != nil || req.CorpID == "" || req.Secret == "" {
			adminError(w, fmt.Errorf("want {\"corpid\",\"secret\"}: %v", err))
			return
		}
		s.AddCorp(req.CorpID, req.Secret)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /_sim/allow_ips", func(w http.ResponseWriter, r *http.Request) {
		var ips []string
		if err := decodeAdmin(w, r, &ips); err != nil {
			adminError(w, err)
			return
		}
		for _, ip := range ips {
			if _, err := parseAllow(ip); err != nil {
				adminError(w, fmt.Errorf("allow_ips: %w", err))
				return
			}
		}
		s.SetAllowIPs(ips)
		w.WriteHeader(http.StatusNoContent)
	})
}

func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) error {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

func writeAdmin(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func adminError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
