package deploy_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// TestRolesScript keeps deploy/etcd-roles.sh, the etcdctl recipe, granting
// exactly tokenstore.Roles, which replica/roles_test.go tests on etcd.
func TestRolesScript(t *testing.T) {
	data, err := os.ReadFile("etcd-roles.sh")
	if err != nil {
		t.Fatal(err)
	}
	grant := regexp.MustCompile(`(?m)^etcdctl role grant-permission --prefix=true (\S+) (read|write|readwrite) "\$p(/\S*)"$`)
	var got []string
	for _, m := range grant.FindAllStringSubmatch(string(data), -1) {
		got = append(got, m[1]+" "+m[2]+" "+m[3])
	}
	names := map[clientv3.PermissionType]string{
		clientv3.PermissionType(clientv3.PermRead):      "read",
		clientv3.PermissionType(clientv3.PermWrite):     "write",
		clientv3.PermissionType(clientv3.PermReadWrite): "readwrite",
	}
	var want []string
	for _, r := range tokenstore.Roles("") {
		for _, p := range r.Perms {
			want = append(want, r.Name+" "+names[p.Type]+" "+p.Prefix)
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("deploy/etcd-roles.sh grants\n  %s\ntokenstore.Roles grants\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
