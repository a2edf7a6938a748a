// Package etcdtest starts real etcd clusters for tests, with etcd's own
// integration framework (members in-process, bridges to cut clients off).
package etcdtest

import (
	"testing"

	"go.etcd.io/etcd/tests/v3/framework/integration"
)

// NewCluster starts a cluster of size members with bridges, waits for a
// leader, and terminates it when the test ends.
func NewCluster(t *testing.T, size int) *integration.Cluster {
	t.Helper()
	integration.BeforeTestExternal(t)
	clus := integration.NewCluster(t, &integration.ClusterConfig{Size: size, UseBridge: true})
	t.Cleanup(func() { clus.Terminate(t) })
	clus.WaitLeader(t)
	return clus
}
