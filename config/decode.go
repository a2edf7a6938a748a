package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// rawConfig mirrors the YAML file. Strings that hold durations stay strings
// so that a bad one is reported with its field; pointers tell an absent key
// from a zero value.
type rawConfig struct {
	Node       string           `yaml:"node"`
	Listen     string           `yaml:"listen"`
	Advertise  string           `yaml:"advertise"`
	DataDir    string           `yaml:"data_dir"`
	LogLevel   string           `yaml:"log_level"`
	Etcd       rawEtcd          `yaml:"etcd"`
	Encryption rawEncryption    `yaml:"encryption"`
	Election   rawElection      `yaml:"election"`
	Refresh    rawRefresh       `yaml:"refresh"`
	WeChat     rawWeChat        `yaml:"wechat"`
	Apps       []rawApp         `yaml:"apps"`
	AppsFile   string           `yaml:"apps_file"` // appsfile.go
	Platforms  []rawPlatform    `yaml:"platforms"` // platform.go
	rawAccess  `yaml:",inline"` // access.go
}

type rawEtcd struct {
	Endpoints    []string   `yaml:"endpoints"`
	Prefix       string     `yaml:"prefix"`
	Username     string     `yaml:"username"`
	Password     *string    `yaml:"password"`
	PasswordFile *string    `yaml:"password_file"`
	DialTimeout  string     `yaml:"dial_timeout"`
	TLS          rawEtcdTLS `yaml:"tls"`
}

type rawElection struct {
	TTL       string `yaml:"ttl"`
	Candidate *bool  `yaml:"candidate"`
	Holdoff   string `yaml:"holdoff"`
}

type rawRefresh struct {
	Before         string `yaml:"before"`
	Jitter         string `yaml:"jitter"`
	FetchTimeout   string `yaml:"fetch_timeout"`
	Concurrency    *int   `yaml:"concurrency"`
	Margin         string `yaml:"margin"`
	Overlap        string `yaml:"overlap"`
	ReadWait       string `yaml:"read_wait"`
	InvalidateWait string `yaml:"invalidate_wait"`
	ReportInterval string `yaml:"report_interval"`
}

type rawWeChat struct {
	BaseURL      string `yaml:"base_url"`
	WeComBaseURL string `yaml:"wecom_base_url"`
	InsecureHTTP bool   `yaml:"insecure_http"`
}

// rawApp is one item of apps (YAML) or of the apps_file (JSON, the same
// keys).
type rawApp struct {
	Name         string           `yaml:"name" json:"name"`
	Kind         string           `yaml:"kind" json:"kind"`
	AppID        string           `yaml:"appid" json:"appid"`
	Secret       *string          `yaml:"secret" json:"secret"`
	SecretFile   *string          `yaml:"secret_file" json:"secret_file"`
	DailyBudget  *int             `yaml:"daily_budget" json:"daily_budget"`
	Tickets      []string         `yaml:"tickets" json:"tickets"`
	TokenFile    string           `yaml:"token_file" json:"token_file"`
	rawAppAccess `yaml:",inline"` // access.go
}

// decode strictly decodes the single YAML document in data into raw and
// rewrites yaml.v3's errors so that they name the field path.
func decode(data []byte, raw *rawConfig) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(raw)
	switch {
	case errors.Is(err, io.EOF):
		return nil // empty file: all defaults
	case err == nil:
		var extra yaml.Node
		switch err := dec.Decode(&extra); {
		case errors.Is(err, io.EOF):
			return nil
		case err == nil:
			return errors.New("config: more than one YAML document (want one)")
		default:
			return fmt.Errorf("config: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fmt.Errorf("config: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	loc := newLocator(data)
	errs := make([]error, 0, len(te.Errors))
	for _, msg := range te.Errors {
		errs = append(errs, loc.rewrite(msg))
	}
	return errors.Join(errs...)
}

var (
	// Formats of yaml.v3 v3.0.1's decoder errors (decode.go, terror and
	// mappingStruct).
	unknownKeyRE = regexp.MustCompile("^line (\\d+): field (.*) not found in type \\S+$")
	mismatchRE   = regexp.MustCompile("^line (\\d+): cannot unmarshal (!!\\w+)( `.*`)? into (\\S+)$")
)

// nodeClass groups yaml node kinds the way yaml.v3's error tags do.
type nodeClass int

const (
	classScalar nodeClass = iota
	classMapping
	classSequence
)

type lineKey struct {
	line int
	key  string
}

type valueAt struct {
	path  string
	class nodeClass
}

// locator maps line numbers in the source to field paths such as
// "apps[1].secret", so that yaml.v3's errors can name the field.
type locator struct {
	keys   map[lineKey]string // key node (line, text) -> path
	values map[int][]valueAt  // line of a value node -> paths
}

func newLocator(data []byte) *locator {
	l := &locator{keys: map[lineKey]string{}, values: map[int][]valueAt{}}
	var root yaml.Node
	if yaml.Unmarshal(data, &root) == nil {
		l.walk(&root, "")
	}
	return l
}

func (l *locator) walk(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			l.walk(c, path)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			l.keys[lineKey{k.Line, k.Value}] = p
			l.value(v, p)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.value(c, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

func (l *locator) value(n *yaml.Node, path string) {
	class := classScalar
	switch n.Kind {
	case yaml.MappingNode:
		class = classMapping
	case yaml.SequenceNode:
		class = classSequence
	case yaml.AliasNode:
		return
	}
	l.values[n.Line] = append(l.values[n.Line], valueAt{path, class})
	l.walk(n, path)
}

// rewrite turns one yaml.v3 type error into a config error naming the field.
func (l *locator) rewrite(msg string) error {
	if m := unknownKeyRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		path, ok := l.keys[lineKey{line, m[2]}]
		if !ok {
			path = m[2]
		}
		return fmt.Errorf("config: %s: unknown key (line %d)", path, line)
	}
	if m := mismatchRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		class := classScalar
		switch m[2] {
		case "!!map":
			class = classMapping
		case "!!seq":
			class = classSequence
		}
		got := strings.TrimSpace(m[3])
		switch {
		case got != "":
		case class == classMapping:
			got = "a mapping"
		case class == classSequence:
			got = "a list"
		default:
			got = m[2]
		}
		path := ""
		for _, v := range l.values[line] {
			if v.class != class {
				continue
			}
			if path != "" { // ambiguous (flow style): name no field
				path = ""
				break
			}
			path = v.path
		}
		if path == "" {
			return fmt.Errorf("config: line %d: got %s, want %s", line, got, wantType(m[4]))
		}
		return fmt.Errorf("config: %s: got %s, want %s (line %d)", path, got, wantType(m[4]), line)
	}
	return fmt.Errorf("config: %s", msg)
}

// wantType describes a Go type of rawConfig in the user's terms.
func wantType(typ string) string {
	switch {
	case typ == "string":
		return "a string"
	case typ == "bool":
		return "true or false"
	case typ == "int":
		return "a whole number"
	case typ == "[]string":
		return "a list of strings"
	case strings.HasPrefix(typ, "[]"):
		return "a list"
	case strings.Contains(typ, "config.raw"):
		return "a mapping"
	default:
		return typ
	}
}
