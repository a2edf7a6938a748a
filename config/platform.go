package config

import (
	"fmt"
	"strings"

	"github.com/wxtoken/wxtoken/wxcrypt"
)

// Platform is a WeChat Open Platform third-party platform (第三方平台), an
// item of "platforms". Its authorization-event URL is
// POST /v1/platforms/{name}/events on every replica.
type Platform struct {
	// Name ("name") is used in URLs: [a-z0-9][a-z0-9_-]{0,62}, unique
	// across apps and platforms.
	Name string
	// ComponentAppID ("component_appid") is the platform's appid.
	ComponentAppID string
	// ComponentSecret ("component_secret" with ${ENV} expansion, or
	// "component_secret_file") is its appsecret.
	ComponentSecret Secret
	// Token ("token", ${ENV} allowed) is the message verification token
	// (消息校验Token) that signs every push.
	Token Secret
	// EncodingAESKey ("encoding_aes_key", ${ENV} allowed) is the 43
	// characters of the message encryption key (消息加解密Key).
	EncodingAESKey Secret
	// PreviousEncodingAESKey ("previous_encoding_aes_key", optional) is
	// tried when EncodingAESKey fails, during a key change.
	PreviousEncodingAESKey Secret
	// DailyBudget ("daily_budget") bounds component token fetches per
	// China-time day; default DefaultDailyBudget.
	DailyBudget int
}

// rawPlatform is an item of platforms as the file has it.
type rawPlatform struct {
	Name                   string  `yaml:"name"`
	ComponentAppID         string  `yaml:"component_appid"`
	ComponentSecret        *string `yaml:"component_secret"`
	ComponentSecretFile    *string `yaml:"component_secret_file"`
	Token                  *string `yaml:"token"`
	EncodingAESKey         *string `yaml:"encoding_aes_key"`
	PreviousEncodingAESKey *string `yaml:"previous_encoding_aes_key"`
	DailyBudget            *int    `yaml:"daily_budget"`
}

// Platform returns the platform named name and whether there is one.
func (c *Config) Platform(name string) (Platform, bool) {
	for _, p := range c.Platforms {
		if p.Name == name {
			return p, true
		}
	}
	return Platform{}, false
}

// platforms builds c.Platforms from r.
func (b *builder) platforms(r []rawPlatform) []Platform {
	var out []Platform
	for i, rp := range r {
		field := fmt.Sprintf("platforms[%d]", i)
		p := Platform{
			Name:            rp.Name,
			ComponentAppID:  rp.ComponentAppID,
			ComponentSecret: b.secret(field+".component_secret", field+".component_secret_file", rp.ComponentSecret, rp.ComponentSecretFile),
			Token:           b.secret(field+".token", field+".token_file", rp.Token, nil),
			EncodingAESKey:  b.secret(field+".encoding_aes_key", field+".encoding_aes_key_file", rp.EncodingAESKey, nil),
			DailyBudget:     intOrDefault(rp.DailyBudget, DefaultDailyBudget),
		}
		// "" is the documented way to say "no previous key".
		if rp.PreviousEncodingAESKey != nil && *rp.PreviousEncodingAESKey != "" {
			p.PreviousEncodingAESKey = b.secret(field+".previous_encoding_aes_key", field+".previous_encoding_aes_key_file", rp.PreviousEncodingAESKey, nil)
		}
		out = append(out, p)
	}
	return out
}

// platforms validates c.Platforms. Names must not collide with an app's:
// both name a credential family in etcd and in URLs.
func (p *problems) platforms(c *Config) {
	if len(c.Platforms) == 0 {
		return
	}
	if !c.Encryption.On() {
		p.addf("platforms", "need encryption.key_files: a platform's tickets, authorization codes and refresh tokens are sealed in etcd, never stored in the clear")
	}
	apps := map[string]int{}
	for i, a := range c.Apps {
		apps[a.Name] = i
	}
	names := map[string]int{}
	ids := map[string]int{}
	for i, pl := range c.Platforms {
		field := fmt.Sprintf("platforms[%d]", i)
		switch j, dup := names[pl.Name]; {
		case pl.Name == "":
			p.addf(field+".name", "missing")
		case !appNameRE.MatchString(pl.Name):
			p.addf(field+".name", "bad name %q (want [a-z0-9][a-z0-9_-]{0,62})", pl.Name)
		case dup:
			p.addf(field+".name", "duplicate %q (also platforms[%d])", pl.Name, j)
		default:
			if j, clash := apps[pl.Name]; clash {
				p.addf(field+".name", "%q is also the name of apps[%d] (names are unique across apps and platforms)", pl.Name, j)
			}
			names[pl.Name] = i
		}
		switch j, dup := ids[pl.ComponentAppID]; {
		case pl.ComponentAppID == "":
			p.addf(field+".component_appid", "missing")
		case len(pl.ComponentAppID) > 128 || strings.ContainsFunc(pl.ComponentAppID, badNameRune):
			p.addf(field+".component_appid", "bad appid %q (want up to 128 characters, no spaces)", pl.ComponentAppID)
		case dup:
			p.addf(field+".component_appid", "same platform as platforms[%d]: two entries would refresh each other's component tokens", j)
		default:
			ids[pl.ComponentAppID] = i
		}
		if pl.ComponentSecret.IsZero() {
			p.addf(field+".component_secret", "missing (set component_secret or component_secret_file)")
		}
		if pl.Token.IsZero() {
			p.addf(field+".token", "missing (the message verification token of the platform's console)")
		}
		p.aesKey(field+".encoding_aes_key", pl.EncodingAESKey, true)
		p.aesKey(field+".previous_encoding_aes_key", pl.PreviousEncodingAESKey, false)
		if !pl.PreviousEncodingAESKey.IsZero() && pl.PreviousEncodingAESKey.Reveal() == pl.EncodingAESKey.Reveal() {
			p.addf(field+".previous_encoding_aes_key", "the same key as encoding_aes_key (drop it, or set the key you are replacing)")
		}
		if pl.DailyBudget <= 0 {
			p.addf(field+".daily_budget", "%d is not positive", pl.DailyBudget)
		}
	}
}

// aesKey checks an EncodingAESKey without ever quoting it: wxcrypt's
// errors say what is wrong (length, alphabet), not what the key is.
func (p *problems) aesKey(field string, s Secret, required bool) {
	if s.IsZero() {
		if required {
			p.addf(field, "missing (the 43-character message encryption key of the platform's console)")
		}
		return
	}
	if err := wxcrypt.ValidKey(s.Reveal()); err != nil {
		// wxcrypt's errors are fixed texts (length, alphabet), never the key.
		p.addf(field, "%s (want the 43 characters of the platform's console)", strings.TrimPrefix(err.Error(), "wxcrypt: "))
	}
}

// printPlatforms is c.Platforms as printed, every secret redacted.
func printPlatforms(ps []Platform) []rawPlatform {
	var out []rawPlatform
	for _, pl := range ps {
		out = append(out, rawPlatform{
			Name: pl.Name, ComponentAppID: pl.ComponentAppID, ComponentSecret: masked(pl.ComponentSecret),
			Token: masked(pl.Token), EncodingAESKey: masked(pl.EncodingAESKey),
			PreviousEncodingAESKey: masked(pl.PreviousEncodingAESKey), DailyBudget: &pl.DailyBudget,
		})
	}
	return out
}
