package replica

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/wxtoken/wxtoken/config"
	"github.com/wxtoken/wxtoken/tokenstore"
)

// OpenStore connects to the etcd of cfg as a replica does (endpoints,
// credentials, TLS; with no endpoints, the embedded etcd of the replica
// that runs with cfg's data_dir, through its socket) and returns a Store
// that seals and opens as the replica's (encryption.key_files), for
// commands that work on the cluster's etcd beside the replicas, such as
// `wxtoken platform recover`. close releases the connection. Its errors
// are one line, fit for a user.
func OpenStore(cfg *config.Config, log *slog.Logger) (store *tokenstore.Store, close func(), err error) {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	endpoints := cfg.Etcd.Endpoints
	if len(endpoints) == 0 {
		dir, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return nil, nil, fmt.Errorf("data_dir: %w", err)
		}
		sock := filepath.Join(dir, embeddedSocket)
		if _, err := os.Stat(sock); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("no etcd.endpoints, and no replica runs with data_dir %s (its embedded etcd is reached through %s): start wxtoken serve with this config first", dir, sock)
		}
		endpoints = []string{(&url.URL{Scheme: "unix", Path: sock}).String()}
	}
	c, err := dial(endpoints, cfg.Etcd)
	if err != nil {
		return nil, nil, err
	}
	sl, err := sealing(cfg.Encryption, log)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	store = tokenstore.New(c, cfg.Etcd.Prefix)
	store.SetSealing(sl)
	return store, func() { c.Close() }, nil
}
