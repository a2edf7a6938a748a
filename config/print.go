package config

import (
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// MarshalYAML implements yaml.Marshaler: a Config prints as the effective
// configuration, under the keys of the file, with every default filled in
// and every secret (set inline, from ${ENV} or from a file) shown as
// "[redacted]". Parsing the output gives the same Config but for the
// secrets' values.
func (c *Config) MarshalYAML() (any, error) {
	r := rawConfig{
		Node: c.Node, Listen: c.Listen, Advertise: c.Advertise, DataDir: c.DataDir, LogLevel: c.LogLevel,
		Etcd: rawEtcd{
			Endpoints: c.Etcd.Endpoints, Prefix: c.Etcd.Prefix, Username: c.Etcd.Username,
			Password: masked(c.Etcd.Password), DialTimeout: short(c.Etcd.DialTimeout),
		},
		Election: rawElection{TTL: short(c.Election.TTL), Candidate: &c.Election.Candidate, Holdoff: short(c.Election.Holdoff)},
		Refresh: rawRefresh{
			Before: short(c.Refresh.Before), Jitter: short(c.Refresh.Jitter), FetchTimeout: short(c.Refresh.FetchTimeout),
			Concurrency: &c.Refresh.Concurrency, Margin: short(c.Refresh.Margin), Overlap: short(c.Refresh.Overlap),
		},
		WeChat: rawWeChat{BaseURL: c.WeChat.BaseURL, WeComBaseURL: c.WeChat.WeComBaseURL},
	}
	for _, a := range c.Apps {
		r.Apps = append(r.Apps, rawApp{
			Name: a.Name, Kind: a.Kind, AppID: a.AppID, Secret: masked(a.Secret),
			DailyBudget: &a.DailyBudget, Tickets: a.Tickets, TokenFile: a.TokenFile,
		})
	}
	r.Platforms = printPlatforms(c.Platforms)
	var n yaml.Node
	if err := n.Encode(r); err != nil {
		return nil, err
	}
	dropNulls(&n)
	return &n, nil
}

// dropNulls removes the keys without a value (the unused one of secret
// and secret_file) from the mappings under n.
func dropNulls(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := n.Content[i+1]; v.Kind != yaml.ScalarNode || v.Tag != "!!null" {
				kept = append(kept, n.Content[i], v)
			}
		}
		n.Content = kept
	}
	for _, c := range n.Content {
		dropNulls(c)
	}
}

// masked is what a secret prints as: nil when unset.
func masked(s Secret) *string {
	if s.IsZero() {
		return nil
	}
	v := redacted
	return &v
}

// short formats d as time.ParseDuration reads it, without zero units:
// "8m", not "8m0s".
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
