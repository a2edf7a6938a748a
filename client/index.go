package client

import (
	"maps"
	"net/url"
)

// key names one cached token: an app's, a platform's component token, or
// one of its authorizers'. It is comparable and made of its arguments
// alone, so that a cached read allocates nothing; the URL path is built
// only for a request.
type key struct {
	kind     kind
	platform string // "" for an app
	name     string // the app, or the authorizer's appid; "" for a component token
}

// kind is what a key names.
type kind uint8

const (
	kindApp kind = iota
	kindComponent
	kindAuthorizer
)

// path is the URL path of k's token route.
func (k key) path() string {
	switch k.kind {
	case kindComponent:
		return "/v1/platforms/" + url.PathEscape(k.platform) + "/token"
	case kindAuthorizer:
		return "/v1/platforms/" + url.PathEscape(k.platform) + "/authorizers/" + url.PathEscape(k.name) + "/token"
	}
	return "/v1/apps/" + url.PathEscape(k.name) + "/token"
}

// String names k's token in errors, never its value.
func (k key) String() string {
	switch k.kind {
	case kindComponent:
		return "component token of platform " + k.platform
	case kindAuthorizer:
		return "token of authorizer " + k.name + " of platform " + k.platform
	}
	return "token of " + k.name
}

// index finds the slot of a key. The Client reads one without locks and
// never changes it; new slots go into a copy (Client.dirty) that replaces
// it once lookups have missed it as many times as the copy has slots, as
// sync.Map does. A client of 10,000 authorizers so copies its index a few
// times, not once per authorizer (which allocated 2.2 GB for 10,000).
//
// Its maps are keyed by strings rather than by key: Go hashes a struct key
// field by field, which made a cached read three times slower.
type index struct {
	apps        map[string]*slot           // by app
	components  map[string]*slot           // by platform
	authorizers map[string]*authorizerSlot // by appid
	n           int                        // slots in all
}

// authorizerSlot is the slot of an appid on one platform, and the next
// platform the account has authorized. Keyed by appid alone, a read looks
// up one map, not two. It never changes once in an index.
type authorizerSlot struct {
	platform string
	slot     *slot
	next     *authorizerSlot
}

// app returns an app's slot, or nil.
func (x *index) app(name string) *slot { return x.apps[name] }

// component returns the slot of a platform's component token, or nil.
func (x *index) component(platform string) *slot { return x.components[platform] }

// authorizer returns the slot of an authorizer's token, or nil.
func (x *index) authorizer(platform, appid string) *slot {
	for a := x.authorizers[appid]; a != nil; a = a.next {
		if a.platform == platform {
			return a.slot
		}
	}
	return nil
}

// get returns k's slot, or nil.
func (x *index) get(k key) *slot {
	switch k.kind {
	case kindComponent:
		return x.component(k.platform)
	case kindAuthorizer:
		return x.authorizer(k.platform, k.name)
	}
	return x.app(k.name)
}

// put maps k, which x lacks, to s. x must be a copy no reader has.
func (x *index) put(k key, s *slot) {
	switch k.kind {
	case kindComponent:
		x.components[k.platform] = s
	case kindAuthorizer:
		x.authorizers[k.name] = &authorizerSlot{platform: k.platform, slot: s, next: x.authorizers[k.name]}
	default:
		x.apps[k.name] = s
	}
	x.n++
}

// clone returns a copy of x that shares none of its maps (the
// authorizerSlots it shares never change).
func (x *index) clone() *index {
	return &index{apps: maps.Clone(x.apps), components: maps.Clone(x.components), authorizers: maps.Clone(x.authorizers), n: x.n}
}

// newIndex returns an empty index.
func newIndex() *index {
	return &index{apps: map[string]*slot{}, components: map[string]*slot{}, authorizers: map[string]*authorizerSlot{}}
}

// slot returns k's slot, creating it.
func (c *Client) slot(k key) *slot {
	if s := c.slots.Load().get(k); s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.slots.Load().get(k); s != nil {
		return s
	}
	if c.dirty == nil {
		c.dirty = c.slots.Load().clone()
	}
	s := c.dirty.get(k)
	if s == nil {
		s = &slot{}
		c.dirty.put(k, s)
	}
	if c.misses++; c.misses >= c.dirty.n {
		c.slots.Store(c.dirty)
		c.dirty, c.misses = nil, 0
	}
	return s
}
