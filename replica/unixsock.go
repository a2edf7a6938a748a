package replica

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"
)

// unixSocket is the API's unix socket listener; close removes the file.
type unixSocket struct {
	path string
	ln   *net.UnixListener
}

// listenUnix creates the socket at path with mode and, if group is set,
// that group. The socket is made in a private directory beside path and
// renamed into place once its mode and group are set, so that it is never
// reachable with looser permissions. A stale socket at path (nobody
// answers on it) is replaced; a live one or any other file is an error.
func listenUnix(path string, mode os.FileMode, group string) (*unixSocket, error) {
	gid := -1
	if group != "" {
		g, err := lookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("socket_group: %w", err)
		}
		gid = g
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Dir(path), ".wxtoken-sock-")
	if err != nil {
		return nil, fmt.Errorf("listen_unix: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen_unix: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*unixSocket, error) {
		ln.Close()
		return nil, err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fail(fmt.Errorf("socket_mode: %w", err))
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fail(fmt.Errorf("socket_group: give %s to group %s: %w", path, group, errors.Unwrap(err)))
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(fmt.Errorf("listen_unix: %w", err))
	}
	return &unixSocket{path: path, ln: ln}, nil
}

// clearStale removes a socket at path that nobody answers on.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("listen_unix: %w", err)
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("listen_unix: %s exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("listen_unix: %s is in use by another process", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("listen_unix: remove stale socket: %w", err)
	}
	return nil
}

// lookupGroup returns the gid of a group name or number.
func lookupGroup(group string) (int, error) {
	if n, err := strconv.Atoi(group); err == nil && n >= 0 {
		return n, nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

// close stops listening and removes the socket file.
func (u *unixSocket) close() {
	u.ln.Close()
	os.Remove(u.path)
}
