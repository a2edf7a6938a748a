package chaos

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/wxtoken/wxtoken/seal"
	"github.com/wxtoken/wxtoken/tokenstore"
	"github.com/wxtoken/wxtoken/wxcrypt"
)

// platformName is the run's Open Platform third-party platform, as in
// /v1/platforms/{name}/... and the replicas' config.
const platformName = "saas"

// platformSetup is the run's third-party platform (第三方平台): its
// component appid and secrets (random for each run), the key that seals
// what the replicas keep of it in etcd (encryption.key_files, required
// with platforms), and the authorizers the harness authorizes at start.
type platformSetup struct {
	name, compAppID string
	secret          string // component appsecret
	msgToken        string // message verification token
	aesKey          string // EncodingAESKey, 43 characters
	keyFile         string // the replicas' encryption.key_files
	ring            *seal.Ring
	authorizers     []string // authorizer appids
}

// newPlatformSetup draws the platform's secrets and writes the sealing
// key to dir.
func newPlatformSetup(dir string, authorizers int) (*platformSetup, error) {
	p := &platformSetup{name: platformName, compAppID: "wxc4a05c0mp00001",
		secret: randomHex(16), msgToken: randomHex(12), keyFile: filepath.Join(dir, "wxtoken.key")}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	p.aesKey = base64.StdEncoding.EncodeToString(b)[:wxcrypt.EncodingKeyLen]
	_, _ = rand.Read(b)
	key, err := seal.NewKey(b)
	if err != nil {
		return nil, err
	}
	if p.ring, err = seal.NewRing(key); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p.keyFile, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
		return nil, err
	}
	for i := range authorizers {
		p.authorizers = append(p.authorizers, fmt.Sprintf("wxauth%04d", i+1))
	}
	return p, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// componentCred and authorizerCred are the credential names, which the
// history uses as the "app" of their reads and records.
func (p *platformSetup) componentCred() string { return tokenstore.ComponentCred(p.name) }

func (p *platformSetup) authorizerCred(appID string) string {
	return tokenstore.AuthorizerCred(p.name, appID)
}

// authorizerName is the appid of authorizer i ("authorizer i" without a
// platform: a schedule printed for a run without one).
func (p *platformSetup) authorizerName(i int) string {
	if p == nil || i >= len(p.authorizers) {
		return fmt.Sprintf("authorizer %d", i+1)
	}
	return p.authorizers[i]
}

// eventPath is the platform's authorization-event URL on a replica.
func (p *platformSetup) eventPath() string { return "/v1/platforms/" + p.name + "/events" }

// targets are the platform's token routes that consumers read.
func (p *platformSetup) targets() []target {
	ts := []target{{name: p.componentCred(), path: "/v1/platforms/" + p.name + "/token"}}
	for _, a := range p.authorizers {
		ts = append(ts, p.authorizerTarget(a))
	}
	return ts
}

// authorizerTarget is the token route of authorizer appID.
func (p *platformSetup) authorizerTarget(appID string) target {
	return target{name: p.authorizerCred(appID), path: "/v1/platforms/" + p.name + "/authorizers/" + appID + "/token"}
}

// replicaYAML is the encryption and platforms sections of a replica's
// config.
func (p *platformSetup) replicaYAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "encryption:\n  key_files: [%s]\n", p.keyFile)
	fmt.Fprintf(&b, "platforms:\n  - name: %s\n    component_appid: %s\n    component_secret: %s\n    token: %s\n    encoding_aes_key: %s\n",
		p.name, p.compAppID, p.secret, p.msgToken, p.aesKey)
	return b.String()
}

// simArgs are the simulator's flags for the platform: pushes to pushURL
// every t.TicketEvery, tickets valid t.TicketTTL, and every authorizer
// refresh rotating the refresh token, the previous one dying at once.
func (p *platformSetup) simArgs(pushURL string, t Timing) []string {
	return []string{"--platform", strings.Join([]string{p.compAppID, p.secret, p.msgToken, p.aesKey, pushURL}, ","),
		"--ticket-every", t.TicketEvery.String(), "--ticket-ttl", t.TicketTTL.String(), "--rotate-refresh", "1"}
}

// openRecord decodes a record's etcd value: sealed when the run has a
// platform (the replicas then seal every record), plain JSON otherwise.
func openRecord(ring *seal.Ring, key string, val []byte) ([]byte, error) {
	if ring == nil {
		return val, nil
	}
	return ring.Open(val, []byte(key))
}
