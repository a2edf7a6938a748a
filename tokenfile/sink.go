// Package tokenfile writes apps' tokens to files, for apps that read a file
// rather than call the API. Every write is atomic: a reader sees the old
// token or the new one, whole, never a partial file.
package tokenfile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/wxtoken/wxtoken/tokenstore"
)

// Defaults for Config.
const (
	DefaultRetryInterval = 5 * time.Second
	// Mode is the permission of every token file: the owner writes, a
	// group (the app's) reads.
	Mode = 0o640
)

// Source is the cache the Sink follows; *tokenstore.Cache implements it.
// It must be safe for concurrent use.
type Source interface {
	Get(cred string) (tokenstore.Record, bool)
	// Changed returns a channel closed at the next change.
	Changed() <-chan struct{}
}

var _ Source = (*tokenstore.Cache)(nil)

// File asks for the credential Cred ("app/token") to be kept in Path,
// with permission Mode (0 means the package's Mode).
type File struct {
	Cred string
	Path string
	Mode os.FileMode
}

// Config configures a Sink.
type Config struct {
	Source Source
	Files  []File
	// Margin: a record with less than this left is not written.
	Margin time.Duration
	// RetryInterval is the pause before writing again after a failure.
	// Default DefaultRetryInterval.
	RetryInterval time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// Sink keeps each File holding the newest usable value of its credential:
// the bare value, no newline, mode 0640.
type Sink struct {
	cfg Config
	log *slog.Logger
}

// New validates cfg and returns a Sink.
func New(cfg Config) (*Sink, error) {
	if cfg.Source == nil {
		return nil, errors.New("tokenfile: Source is required")
	}
	seen := map[string]bool{}
	for _, f := range cfg.Files {
		switch {
		case f.Cred == "" || f.Path == "":
			return nil, fmt.Errorf("tokenfile: file %+v: Cred and Path are required", f)
		case seen[filepath.Clean(f.Path)]:
			return nil, fmt.Errorf("tokenfile: %s is named twice", f.Path)
		}
		seen[filepath.Clean(f.Path)] = true
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sink{cfg: cfg, log: cfg.Logger.With("component", "tokenfile")}, nil
}

// Run writes each file now and again at every change of its credential,
// until ctx ends; then it returns nil. A failed write is logged and tried
// again after RetryInterval.
func (s *Sink) Run(ctx context.Context) error {
	written := make(map[string]uint64, len(s.cfg.Files)) // path -> seq
	for {
		changed := s.cfg.Source.Changed() // before reading: no change is missed
		var retry <-chan time.Time
		var timer *time.Timer
		if !s.sync(written) {
			timer = time.NewTimer(s.cfg.RetryInterval)
			retry = timer.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-retry:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// sync writes every file whose credential has a newer usable record than
// the one written; it reports whether all writes succeeded.
func (s *Sink) sync(written map[string]uint64) bool {
	ok := true
	now := s.cfg.Now()
	for _, f := range s.cfg.Files {
		rec, found := s.cfg.Source.Get(f.Cred)
		if !found || !rec.Usable(now, s.cfg.Margin) {
			continue
		}
		if seq, done := written[f.Path]; done && seq >= rec.Seq {
			continue
		}
		mode := f.Mode
		if mode == 0 {
			mode = Mode
		}
		if err := WriteMode(f.Path, []byte(rec.Value), mode); err != nil {
			s.log.Error("write token file", "cred", f.Cred, "path", f.Path, "err", err)
			ok = false
			continue
		}
		written[f.Path] = rec.Seq
		s.log.Info("wrote token file", "cred", f.Cred, "path", f.Path, "seq", rec.Seq)
	}
	return ok
}

// Write replaces the file at path with data atomically: it writes a
// temporary file in the same directory, sets mode 0640, syncs it, renames it
// over path and syncs the directory. On error path is unchanged and the
// temporary file is gone.
func Write(path string, data []byte) error { return WriteMode(path, data, Mode) }

// WriteMode is Write with the file's permission mode.
func WriteMode(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
