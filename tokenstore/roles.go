package tokenstore

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Names of the etcd roles of Roles.
const (
	// RoleCandidate is for replicas with election.candidate true: they
	// lead, fetch and publish.
	RoleCandidate = "wxtoken-candidate"
	// RoleSidecar is for serve-only replicas (election.candidate false).
	RoleSidecar = "wxtoken-sidecar"
)

var (
	read      = clientv3.PermissionType(clientv3.PermRead)
	readWrite = clientv3.PermissionType(clientv3.PermReadWrite)
)

// Perm grants Type (clientv3.PermRead, PermWrite or PermReadWrite) on every
// key that starts with Prefix.
type Perm struct {
	Prefix string
	Type   clientv3.PermissionType
}

// Role is one etcd role of the least-privilege set.
type Role struct {
	Name  string
	Perms []Perm
}

// Roles is the least-privilege role set for a cluster under prefix, for
// etcd with auth enabled:
//
//   - RoleCandidate reads and writes everything under prefix/.
//   - RoleSidecar reads everything under prefix/ (records to serve, and
//     the states, budgets, intents, presences and election keys that
//     status shows) and writes only reports (prefix/report/, how a caller
//     says a token is dead), presence (prefix/replica/) and what WeChat
//     pushes to a platform's event URL, which reaches any replica
//     (prefix/platform-events/: tickets, codes, authorizer states; see
//     platform.go). It cannot write a record, an intent, a budget or other
//     day-scoped key (prefix/day/), a state or an election key.
//
// Only records hold credentials, and a sidecar serves them, so reading the
// rest costs nothing. deploy/etcd-roles.sh is the same set for etcdctl.
func Roles(prefix string) []Role {
	k := Keys{Prefix: prefix}
	return []Role{
		{Name: RoleCandidate, Perms: []Perm{{Prefix: prefix + "/", Type: readWrite}}},
		{Name: RoleSidecar, Perms: []Perm{
			{Prefix: prefix + "/", Type: read},
			{Prefix: k.Reports(), Type: readWrite},
			{Prefix: k.Replicas(), Type: readWrite},
			{Prefix: k.PlatformEvents(), Type: readWrite},
		}},
	}
}

// ApplyRoles creates each role that is missing and grants its permissions
// on etcd through c, which must act as root. It is idempotent; it revokes
// nothing, so a permission granted by hand stays.
func ApplyRoles(ctx context.Context, c *clientv3.Client, roles []Role) error {
	for _, r := range roles {
		if _, err := c.RoleAdd(ctx, r.Name); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
			return fmt.Errorf("add role %s: %w", r.Name, err)
		}
		for _, p := range r.Perms {
			if _, err := c.RoleGrantPermission(ctx, r.Name, p.Prefix, clientv3.GetPrefixRangeEnd(p.Prefix), p.Type); err != nil {
				return fmt.Errorf("role %s: grant %s on %s: %w", r.Name, authpb.Permission_Type(p.Type), p.Prefix, err)
			}
		}
	}
	return nil
}
