package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// builder turns a rawConfig into a Config: it fills in defaults, parses
// durations, expands ${VAR} and reads secret files, collecting one error per
// problem.
type builder struct {
	dir       string
	lookupEnv func(string) (string, bool)
	errs      []error
	warnings  []string // access.go
}

func (b *builder) fail(field string, err error) {
	b.errs = append(b.errs, fmt.Errorf("config: %s: %w", field, err))
}

func (b *builder) build(r *rawConfig) *Config {
	c := &Config{
		Node:      r.Node,
		Listen:    orDefault(r.Listen, DefaultListen),
		Advertise: strings.TrimSuffix(r.Advertise, "/"),
		DataDir:   orDefault(r.DataDir, DefaultDataDir),
		LogLevel:  orDefault(r.LogLevel, DefaultLogLevel),
		Etcd: Etcd{
			Endpoints:   r.Etcd.Endpoints,
			Prefix:      orDefault(r.Etcd.Prefix, DefaultEtcdPrefix),
			Username:    r.Etcd.Username,
			Password:    b.secret("etcd.password", "etcd.password_file", r.Etcd.Password, r.Etcd.PasswordFile),
			DialTimeout: b.duration("etcd.dial_timeout", r.Etcd.DialTimeout, DefaultDialTimeout),
		},
		Election: Election{
			TTL:       b.duration("election.ttl", r.Election.TTL, DefaultTTL),
			Candidate: r.Election.Candidate == nil || *r.Election.Candidate,
			Holdoff:   b.duration("election.holdoff", r.Election.Holdoff, DefaultHoldoff),
		},
		Refresh: Refresh{
			Before:         b.duration("refresh.before", r.Refresh.Before, DefaultBefore),
			Jitter:         b.duration("refresh.jitter", r.Refresh.Jitter, DefaultJitter),
			FetchTimeout:   b.duration("refresh.fetch_timeout", r.Refresh.FetchTimeout, DefaultFetchTimeout),
			Concurrency:    intOrDefault(r.Refresh.Concurrency, DefaultConcurrency),
			Margin:         b.duration("refresh.margin", r.Refresh.Margin, DefaultMargin),
			Overlap:        b.duration("refresh.overlap", r.Refresh.Overlap, DefaultOverlap),
			ReadWait:       b.duration("refresh.read_wait", r.Refresh.ReadWait, DefaultReadWait),
			InvalidateWait: b.duration("refresh.invalidate_wait", r.Refresh.InvalidateWait, DefaultInvalidateWait),
			ReportInterval: b.duration("refresh.report_interval", r.Refresh.ReportInterval, DefaultReportInterval),
		},
		WeChat: WeChat{
			BaseURL:      strings.TrimRight(orDefault(r.WeChat.BaseURL, DefaultBaseURL), "/"),
			WeComBaseURL: strings.TrimRight(orDefault(r.WeChat.WeComBaseURL, DefaultWeComBaseURL), "/"),
			InsecureHTTP: r.WeChat.InsecureHTTP,
		},
	}
	b.security(r, c)
	if c.Node == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			b.fail("node", errors.New("not set and the host name is unknown (set node)"))
		}
		c.Node = host
	}
	for i, ra := range r.Apps {
		field := fmt.Sprintf("apps[%d]", i)
		c.Apps = append(c.Apps, App{
			Name:        ra.Name,
			Kind:        ra.Kind,
			AppID:       ra.AppID,
			Secret:      b.secret(field+".secret", field+".secret_file", ra.Secret, ra.SecretFile),
			DailyBudget: intOrDefault(ra.DailyBudget, DefaultDailyBudget),
			Tickets:     ra.Tickets,
			TokenFile:   b.path(ra.TokenFile),
			AppAccess:   b.appAccess(field, ra.TokenFile, &ra.rawAppAccess),
		})
	}
	c.Platforms = b.platforms(r.Platforms)
	c.Access = b.access(&r.rawAccess)
	return c
}

// path resolves a relative path against the config file's directory.
func (b *builder) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(b.dir, p)
}

// duration parses s, or returns def if s is empty.
func (b *builder) duration(field, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		b.fail(field, fmt.Errorf("bad duration %q: %w", s, err))
		return def
	}
	return d
}

// secret returns the Secret given either inline (value, with ${VAR}
// expanded) or in a file; setting both is an error, setting neither gives
// the zero Secret (Validate decides whether that is allowed). No error
// carries the value.
func (b *builder) secret(field, fileField string, value, file *string) Secret {
	switch {
	case value != nil && file != nil:
		b.fail(field, fmt.Errorf("set either %s or %s, not both", lastName(field), lastName(fileField)))
	case value != nil:
		if *value == "" {
			b.fail(field, errors.New("empty"))
			return Secret{}
		}
		s, err := expand(*value, b.lookupEnv)
		if err != nil {
			b.fail(field, err)
			return Secret{}
		}
		return NewSecret(s)
	case file != nil:
		if *file == "" {
			b.fail(fileField, errors.New("empty path"))
			return Secret{}
		}
		path := *file
		if !filepath.IsAbs(path) {
			path = filepath.Join(b.dir, path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			b.fail(fileField, err) // *fs.PathError: names the path, not the content
			return Secret{}
		}
		b.private(fileField, path)
		s := strings.TrimRight(string(data), "\r\n")
		if s == "" {
			b.fail(fileField, fmt.Errorf("file %s is empty", path))
			return Secret{}
		}
		return NewSecret(s)
	}
	return Secret{}
}

// expand replaces each ${NAME} in s with the value of NAME. An unset or
// empty variable is an error that names it. A "$" not followed by "{" is
// kept as is. Errors never quote s, which may hold secret text.
func expand(s string, lookupEnv func(string) (string, bool)) (string, error) {
	var out strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			out.WriteString(s)
			return out.String(), nil
		}
		out.WriteString(s[:i])
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", errors.New(`"${" without a closing "}"`)
		}
		name := s[i+2 : i+2+end]
		if !isEnvName(name) {
			return "", errors.New(`bad variable name in "${...}" (want letters, digits and _)`)
		}
		v, ok := lookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is unset or empty", name)
		}
		out.WriteString(v)
		s = s[i+2+end+1:]
	}
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func intOrDefault(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

// lastName returns the last element of a dotted field path.
func lastName(field string) string {
	return field[strings.LastIndexByte(field, '.')+1:]
}
