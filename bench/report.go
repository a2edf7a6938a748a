package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Row is one figure of the report, beside its target if it has one.
type Row struct {
	Section string  `json:"section"`
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	// Target is the figure's target as text ("< 1 ms"); empty for a
	// figure shown for information.
	Target string `json:"target,omitempty"`
	// Pass is nil for a figure without a target.
	Pass *bool  `json:"pass,omitempty"`
	Note string `json:"note,omitempty"`
}

// Report is what a run measured, printed as one table and written as JSON.
type Report struct {
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Quick    bool      `json:"quick"`
	Host     Host      `json:"host"`
	Rows     []Row     `json:"rows"`
	Notes    []string  `json:"notes,omitempty"`
	Failures []string  `json:"failures,omitempty"` // sections that could not run
}

// Host describes the machine the figures come from.
type Host struct {
	GoVersion string `json:"go_version"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	Kernel    string `json:"kernel,omitempty"`
	Redis     string `json:"redis,omitempty"`
	// Load is /proc/loadavg at the start: other work on the machine
	// shows in every figure.
	Load string `json:"load,omitempty"`
}

// add appends a row without a target.
func (r *Report) add(section, name string, v float64, unit, note string) {
	r.Rows = append(r.Rows, Row{Section: section, Name: name, Value: v, Unit: unit, Note: note})
}

// check appends a row with a target: op is one of "<", "<=", ">=".
func (r *Report) check(section, name string, v float64, unit, op string, limit float64, note string) {
	var pass bool
	switch op {
	case "<":
		pass = v < limit
	case "<=":
		pass = v <= limit
	case ">=":
		pass = v >= limit
	default:
		panic("bench: unknown op " + op)
	}
	r.Rows = append(r.Rows, Row{Section: section, Name: name, Value: v, Unit: unit,
		Target: op + " " + formatValue(limit, unit), Pass: &pass, Note: note})
}

// note adds a line under the table.
func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// formatValue renders v in unit for the table, with three or four
// significant digits.
func formatValue(v float64, unit string) string {
	switch unit {
	case "req/s":
		return groupThousands(int64(v+0.5)) + " req/s"
	case "":
		return groupThousands(int64(v + 0.5))
	case "x", "calls/day":
		return strconv.FormatFloat(v, 'f', 2, 64) + " " + unit
	case "MB":
		return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
	}
	prec := 0
	switch a := math.Abs(v); {
	case a == 0 || a >= 100:
	case a >= 10:
		prec = 1
	case a >= 1:
		prec = 2
	default:
		prec = 3
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + unit
}

func groupThousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Table writes the report as a Markdown table with its notes.
func (r *Report) Table(w io.Writer) {
	fmt.Fprintf(w, "| # | measure | value | target | result |\n|---|---|---|---|---|\n")
	for _, row := range r.Rows {
		result := ""
		if row.Pass != nil {
			result = "PASS"
			if !*row.Pass {
				result = "**MISS**"
			}
		}
		name := row.Name
		if row.Note != "" {
			name += " (" + row.Note + ")"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", row.Section, name, formatValue(row.Value, row.Unit), row.Target, result)
	}
	if len(r.Notes) > 0 || len(r.Failures) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "- FAILED: %s\n", f)
	}
	mode := "full"
	if r.Quick {
		mode = "quick"
	}
	fmt.Fprintf(w, "\n%s run of %s, %.0f s; %s, %d CPUs (%s), Linux %s", mode,
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Seconds, r.Host.GoVersion, r.Host.CPUs, r.Host.CPUModel, r.Host.Kernel)
	if r.Host.Redis != "" {
		fmt.Fprintf(w, ", %s", r.Host.Redis)
	}
	if r.Host.Load != "" {
		fmt.Fprintf(w, "; load average before the run %s", r.Host.Load)
	}
	fmt.Fprintln(w, ".")
}

// readReport reads a report written by WriteJSON.
func readReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &Report{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// WriteJSON writes the report to path, creating its directory.
func (r *Report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}
