// Command wxtoken-etcd-auth turns on etcd's auth for wxtoken, once or
// again (every step is idempotent): it is the init step of
// docker-compose.yml, where images have no shell to run etcdctl from.
//
//	wxtoken-etcd-auth --endpoints https://etcd-1:2379 \
//	  --cacert ca.crt --cert root.crt --key root.key \
//	  --prefix /wxtoken \
//	  --user wxtoken-candidate:wxtoken-candidate:/run/secrets/candidate.password \
//	  --user wxtoken-sidecar:wxtoken-sidecar:/run/secrets/sidecar.password
//
// It connects with a client certificate whose common name is "root" (etcd
// runs with --client-cert-auth, so once auth is on that certificate acts as
// root, with no password); makes sure the root user exists (without a
// password: only that certificate logs in as root); creates the roles of
// tokenstore.Roles under the prefix; creates each user with the password
// in its file (or sets that password again) and grants it its role; and
// enables auth. deploy/etcd-roles.sh is the same with etcdctl.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// user is one --user: name, role and the file holding the password.
type user struct{ name, role, passwordFile string }

type users []user

func (u *users) String() string { return fmt.Sprint(*u) }

func (u *users) Set(s string) error {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return errors.New("want NAME:ROLE:PASSWORD_FILE")
	}
	*u = append(*u, user{parts[0], parts[1], parts[2]})
	return nil
}

// setup is what one run does.
type setup struct {
	endpoints []string
	tls       config.EtcdTLS
	prefix    string
	users     users
	timeout   time.Duration
}

func main() {
	var s setup
	fs := flag.NewFlagSet("wxtoken-etcd-auth", flag.ContinueOnError)
	endpoints := fs.String("endpoints", "https://127.0.0.1:2379", "comma-separated etcd endpoints")
	fs.StringVar(&s.tls.CAFile, "cacert", "", "CA certificate of etcd's certificates")
	fs.StringVar(&s.tls.CertFile, "cert", "", `client certificate with common name "root"`)
	fs.StringVar(&s.tls.KeyFile, "key", "", "its key")
	fs.StringVar(&s.prefix, "prefix", config.DefaultEtcdPrefix, "wxtoken's etcd.prefix")
	fs.Var(&s.users, "user", "NAME:ROLE:PASSWORD_FILE, a user to create (repeatable)")
	fs.DurationVar(&s.timeout, "timeout", 2*time.Minute, "give up after this long")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	s.endpoints = strings.Split(*endpoints, ",")
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if err := s.run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "wxtoken-etcd-auth:", err)
		os.Exit(1)
	}
	fmt.Println("wxtoken-etcd-auth: auth enabled; roles", tokenstore.RoleCandidate, "and", tokenstore.RoleSidecar, "on", s.prefix+"/")
}

// run connects, retrying until ctx ends, and sets everything up.
func (s *setup) run(ctx context.Context) error {
	tc, err := s.tls.ClientConfig()
	if err != nil {
		return err
	}
	c, err := clientv3.New(clientv3.Config{Endpoints: s.endpoints, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), Context: ctx})
	if err != nil {
		return fmt.Errorf("etcd at %v: %w", s.endpoints, err)
	}
	defer c.Close()
	for {
		err := s.apply(ctx, c)
		if err == nil || ctx.Err() != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wxtoken-etcd-auth: retrying:", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(2 * time.Second):
		}
	}
}

// apply makes every step once; each one succeeds when already done.
func (s *setup) apply(ctx context.Context, c *clientv3.Client) error {
	if _, err := c.UserAddWithOptions(ctx, "root", "", &clientv3.UserAddOptions{NoPassword: true}); err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		return fmt.Errorf("add user root: %w", err)
	}
	if _, err := c.UserGrantRole(ctx, "root", "root"); err != nil {
		return fmt.Errorf("grant root the root role: %w", err)
	}
	if err := tokenstore.ApplyRoles(ctx, c, tokenstore.Roles(s.prefix)); err != nil {
		return err
	}
	for _, u := range s.users {
		data, err := os.ReadFile(u.passwordFile)
		if err != nil {
			return fmt.Errorf("user %s: %w", u.name, err)
		}
		password := strings.TrimRight(string(data), "\r\n")
		if password == "" {
			return fmt.Errorf("user %s: password file %s is empty", u.name, u.passwordFile)
		}
		_, err = c.UserAdd(ctx, u.name, password)
		if errors.Is(err, rpctypes.ErrUserAlreadyExist) {
			_, err = c.UserChangePassword(ctx, u.name, password)
		}
		if err != nil {
			return fmt.Errorf("user %s: %w", u.name, err) // etcd's errors never hold the password
		}
		if _, err := c.UserGrantRole(ctx, u.name, u.role); err != nil {
			return fmt.Errorf("user %s: grant role %s: %w", u.name, u.role, err)
		}
	}
	if _, err := c.AuthEnable(ctx); err != nil {
		return fmt.Errorf("enable auth: %w", err)
	}
	return nil
}
