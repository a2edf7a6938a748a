package api

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestRenderUI renders a status with a credential in each state and checks
// what each card says.
func TestRenderUI(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	st := Status{
		Node: "r2", Leader: "r1", Ready: true,
		Replicas: []tokenstore.Presence{
			{Node: "r1", API: "http://10.0.0.1:8417", Candidate: true, Started: now.Add(-3 * time.Hour)},
			{Node: "r2", API: "http://10.0.0.2:8417", Started: now.Add(-90 * time.Second)},
		},
		Credentials: []CredStatus{
			{Cred: "a/token", App: "a", Kind: "classic", Seq: 7, Usable: true, FetchedAt: now.Add(-30 * time.Minute),
				ExpiresAt: now.Add(90 * time.Minute), NextRefresh: now.Add(82 * time.Minute), FetchesToday: 3, Budget: 1000},
			{Cred: "b/token", App: "b", Kind: "stable", Seq: 2, FetchedAt: now.Add(-3 * time.Hour), ExpiresAt: now.Add(-time.Hour),
				NextRefresh: now.Add(-time.Minute), InFlight: true, FetchesToday: 9, Budget: 10,
				Blocked: "quota", BlockedTill: now.Add(12 * time.Hour), LastError: `45009: reach max api daily quota limit <script>`},
			{Cred: "c/token", App: "c", Kind: "wecom", Budget: 5, FetchesToday: 5,
				Owner: "r2", Refused: []Refusal{{Node: "r1", Code: 60020, Until: now.Add(time.Minute)}}, ForeignFetches: 1},
		},
	}
	var buf bytes.Buffer
	if err := renderUI(&buf, st, now); err != nil {
		t.Fatalf("renderUI: %v", err)
	}
	page := buf.String()
	card := func(cred string) string {
		i := strings.Index(page, `data-cred="`+cred+`"`)
		if i < 0 {
			t.Fatalf("no card for %s", cred)
		}
		j := strings.Index(page[i:], "</article>")
		return page[i : i+j]
	}
	states := func(card string) []string {
		var got []string
		for _, m := range regexp.MustCompile(`class="badge state \w+">([^<]+)<`).FindAllStringSubmatch(card, -1) {
			got = append(got, m[1])
		}
		return got
	}
	tests := []struct {
		cred   string
		states []string
		has    []string
	}{
		{"a/token", []string{"usable"}, []string{
			`1h 30m left`, `style="width: 75%"`, `in 1h 22m`, `3 / 1000`, `class="fill " style="width: 0.3%"`, `seq 7`, `fetched 30m ago`, `expires 2026-05-01 13:30:00Z`}},
		{"b/token", []string{"expired", "fetch in flight", "blocked"}, []string{
			`expired 1h 0m ago`, `style="width: 0%"`, `due now`, `9 / 10`, `class="fill warn" style="width: 90%"`,
			`quota <small>until 2026-05-02 00:00:00Z</small>`, `reach max api daily quota limit &lt;script&gt;`}},
		{"c/token", []string{"no token yet"}, []string{`no token`, `not planned`, `5 / 5`, `class="fill bad" style="width: 100%"`,
			`<dd class="owner">r2 `, `<dd class="refused bad-text">r1 (60020)</dd>`, `<dd class="foreign bad-text">1 `}},
	}
	for _, tt := range tests {
		t.Run(tt.cred, func(t *testing.T) {
			c := card(tt.cred)
			if got := states(c); strings.Join(got, ",") != strings.Join(tt.states, ",") {
				t.Errorf("states: got %q, want %q", got, tt.states)
			}
			for _, want := range tt.has {
				if !strings.Contains(c, want) {
					t.Errorf("card lacks %q:\n%s", want, c)
				}
			}
		})
	}
	for _, want := range []string{`<dd id="leader">r1</dd>`, `<dd id="node">r2</dd>`, `<span id="readiness" class="badge ok">ready</span>`,
		`http://10.0.0.1:8417`, `r1 <span class="badge ok">leader</span>`, `r2 <span class="badge info">this</span>`, `3h 0m ago`, `1m 30s ago`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}

	// Without etcd: no leader, a warning, not ready.
	buf.Reset()
	if err := renderUI(&buf, Status{Node: "r2", EtcdError: "etcd unreachable"}, now); err != nil {
		t.Fatalf("renderUI: %v", err)
	}
	for _, want := range []string{`id="etcd-error">etcd unreachable`, `<span class="bad-text">none</span>`, `class="badge bad">not ready`, `No apps are configured`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("page without etcd lacks %q", want)
		}
	}
}

func TestSpan(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {1499 * time.Millisecond, "1s"}, {59 * time.Second, "59s"}, {61 * time.Second, "1m 1s"},
		{10 * time.Minute, "10m"}, {119 * time.Minute, "1h 59m"}, {49 * time.Hour, "2d 1h"},
	} {
		if got := span(tt.d); got != tt.want {
			t.Errorf("span(%v): got %q, want %q", tt.d, got, tt.want)
		}
	}
}
