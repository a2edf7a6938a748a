// Package tokenfile writes apps' tokens to files, for apps that read a file
// rather than call the API. Every write is atomic: a reader sees the old
// content or the new one, whole, never a partial file.
//
// A file follows the API's rule for token reads: it holds the token exactly
// while the API on the same replica would hand it out. When nothing usable
// is held (no record yet, including while the replica's cache is still
// loading at start; a record within the margin of its expiry; or, on a
// replica cut off from etcd, a record past its keep-until less the margin)
// the file is replaced, atomically, by an empty file. It is emptied rather
// than removed so that a reader never meets a missing file: an empty read
// means "no token now, try again shortly". A stopped Sink leaves the file as
// it was.
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
	DefaultOverlap       = 5 * time.Minute
	DefaultSyncInterval  = time.Second
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
	// Synced reports whether the source follows etcd right now.
	Synced() bool
	// Intent returns the fetch in flight for cred, if one is known.
	Intent(cred string) (tokenstore.Intent, bool)
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
	// Margin: a record is not written, and a written one is taken back,
	// when less than this is left before its expiry (or, cut off from
	// etcd, before its keep-until).
	Margin time.Duration
	// Overlap is WeChat's grace for the previous token, as the API's
	// (refresh.overlap); it sets a record's keep-until. Default
	// DefaultOverlap.
	Overlap time.Duration
	// RetryInterval is the pause before writing again after a failure.
	// Default DefaultRetryInterval.
	RetryInterval time.Duration
	// SyncInterval is how often the Source's Synced is checked (a file's
	// content may depend on it). Default DefaultSyncInterval.
	SyncInterval time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// Sink keeps each File holding the newest usable value of its credential
// (the bare value, no newline, mode 0640) or, when there is none, nothing.
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
	if cfg.Margin < 0 || cfg.Overlap < 0 {
		return nil, fmt.Errorf("tokenfile: Margin %v and Overlap %v must not be negative", cfg.Margin, cfg.Overlap)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Overlap, DefaultOverlap)
	def(&cfg.RetryInterval, DefaultRetryInterval)
	def(&cfg.SyncInterval, DefaultSyncInterval)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Sink{cfg: cfg, log: cfg.Logger.With("component", "tokenfile")}, nil
}

// held is what a file was last written with.
type held struct {
	seq   uint64
	empty bool
}

// Run writes each file now, again at every change of its credential, again
// when time alone changes what it must hold (its record reaching its
// keep-until or expiry, less the margin), and again when the Source starts
// or stops following etcd (checked every SyncInterval), until ctx ends;
// then it returns nil and leaves the files as they are. A failed write is
// logged and tried again after RetryInterval.
func (s *Sink) Run(ctx context.Context) error {
	written := make(map[string]held, len(s.cfg.Files)) // by path
	for {
		changed := s.cfg.Source.Changed() // before reading: no change is missed
		now := s.cfg.Now()
		next, ok := s.sync(written, now)
		wait := max(next.Sub(now), 0)
		if !ok {
			wait = min(wait, s.cfg.RetryInterval)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// sync brings every file to what it must hold at now. It returns when to
// look again with no change of records: when time alone changes what a
// file must hold, or after SyncInterval (the Source's sync state may
// change meanwhile); and whether all writes succeeded.
func (s *Sink) sync(written map[string]held, now time.Time) (next time.Time, ok bool) {
	ok = true
	next = now.Add(s.cfg.SyncInterval)
	synced := s.cfg.Source.Synced()
	for _, f := range s.cfg.Files {
		rec, found := s.cfg.Source.Get(f.Cred)
		limit, why := s.limit(rec, synced)
		d := decide(rec, found, now, s.cfg.Margin, limit, why)
		if !d.until.IsZero() && d.until.Before(next) {
			next = d.until
		}
		w, done := written[f.Path]
		switch {
		case d.serve && done && !w.empty && w.seq >= rec.Seq:
			continue // holds this record already, or a newer one
		case !d.serve && done && w.empty:
			continue
		}
		var data []byte
		if d.serve {
			data = []byte(rec.Value)
		}
		mode := f.Mode
		if mode == 0 {
			mode = Mode
		}
		if err := WriteMode(f.Path, data, mode); err != nil {
			s.log.Error("write token file", "cred", f.Cred, "path", f.Path, "err", err)
			ok = false
			continue
		}
		if d.serve {
			written[f.Path] = held{seq: rec.Seq}
			s.log.Info("wrote token file", "cred", f.Cred, "path", f.Path, "seq", rec.Seq)
		} else {
			written[f.Path] = held{empty: true}
			level := slog.LevelWarn
			if !found {
				level = slog.LevelInfo // the cache is still loading, or nothing was ever fetched
			}
			s.log.Log(context.Background(), level, "emptied token file: no usable token", "cred", f.Cred, "path", f.Path, "why", d.why, "seq", rec.Seq)
		}
	}
	return next, ok
}
