package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// hclogAdapter bridges the hclog.Logger that raft and raft-wal log to into
// a *slog.Logger. Raft is chatty at Info (elections, snapshots), so its
// Trace, Debug and Info records become slog Debug records; Warn and Error
// stay as they are. A default slog handler (Info and up) thus shows only
// raft's warnings and errors.
//
// A warning or error about one peer (a dial that fails while a member is
// down) is logged once, then at most once a minute with the count of
// repeats: raft retries every few milliseconds and would otherwise log it
// dozens of times a second. Raft's state changes do not start the count
// again: a node without a quorum enters the candidate state at every
// election timeout (about a second), and its failed vote requests to the
// members that are down would be logged at each.
//
// Raft's records are rewritten to read like ours (see ourMessage and
// ourArgs): a message starts with a lower-case letter (unless it starts
// with an acronym) and has no final period, and attribute keys are
// snake_case ("previous_index", "err"). Raft's warning at every join is
// logged at Debug (see joinWarning).
type hclogAdapter struct {
	base    *slog.Logger // the logger given, without name or implied args
	l       *slog.Logger // base with the name and implied args
	name    string
	implied []any
	rep     *repeats // shared by every adapter derived from one
}

// repeatEvery is how often a repeated warning about a peer is logged.
const repeatEvery = time.Minute

// maxRepeats is how many warnings about peers are remembered before
// those last logged more than repeatEvery ago are forgotten.
const maxRepeats = 1024

// repeats remembers the warnings about peers logged lately.
type repeats struct {
	mu   sync.Mutex
	last map[string]repeat
}

type repeat struct {
	at time.Time // when it was last logged
	n  int       // times seen since
}

// admit reports whether a warning about peer should be logged now, and
// how many repeats it stands for.
func (r *repeats) admit(msg, peer string, now time.Time) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if peer == "" {
		return true, 0
	}
	if len(r.last) >= maxRepeats {
		// Forget what has not been seen for a while, so that peers long
		// gone do not keep their entries.
		for k, v := range r.last {
			if now.Sub(v.at) >= repeatEvery {
				delete(r.last, k)
			}
		}
	}
	key := msg + "\x00" + peer
	prev, seen := r.last[key]
	if seen && now.Sub(prev.at) < repeatEvery {
		prev.n++
		r.last[key] = prev
		return false, 0
	}
	r.last[key] = repeat{at: now}
	return true, prev.n
}

// peerOf returns the peer a raft record is about, if any.
func peerOf(args []any) string {
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "peer", "target", "server-id", "id", "address", "from", "candidate":
			return fmt.Sprint(args[i+1])
		}
	}
	return ""
}

var _ hclog.Logger = (*hclogAdapter)(nil)

// newHCLog returns an hclog.Logger that writes into l.
func newHCLog(l *slog.Logger, name string) hclog.Logger {
	return newAdapter(l, name, nil, &repeats{last: map[string]repeat{}})
}

func newAdapter(base *slog.Logger, name string, implied []any, rep *repeats) *hclogAdapter {
	l := base
	if name != "" {
		l = l.With("logger", name)
	}
	if len(implied) > 0 {
		l = l.With(ourArgs(implied)...)
	}
	return &hclogAdapter{base: base, l: l, name: name, implied: implied, rep: rep}
}

// quietWarning reports whether a raft warning describes a normal event
// (a node starting an election when it starts), to be logged at Info.
func quietWarning(msg string) bool {
	switch msg {
	case "heartbeat timeout reached, starting election", "Election timeout reached, restarting election":
		return true
	}
	return false
}

// joinWarning is the warning a follower's raft logs when its log lacks the
// entry just before those the leader sends. A member that has just joined
// has an empty log, so it says so at every join (and again after a
// restore from a snapshot); the leader then sends older entries or a
// snapshot, as it is meant to. Nothing is wrong, so when the entry is
// missing (raft.ErrLogNotFound) it is logged at Debug; a log store that
// fails to read it is still a warning.
const joinWarning = "failed to get previous log"

// expectedOnJoin reports whether a raft record is joinWarning about an
// entry the log does not have.
func expectedOnJoin(msg string, args []any) bool {
	if msg != joinWarning {
		return false
	}
	for i := 0; i+1 < len(args); i += 2 {
		if err, ok := args[i+1].(error); ok && args[i] == "error" {
			return errors.Is(err, raft.ErrLogNotFound)
		}
	}
	return false
}

// ourMessage returns a raft message in the style of ours: the first letter
// lower-case unless the first word is an acronym ("CRC checksum failed"),
// and no final period.
func ourMessage(msg string) string {
	msg = strings.TrimRight(strings.TrimSpace(msg), ".")
	first, size := utf8.DecodeRuneInString(msg)
	if !unicode.IsUpper(first) {
		return msg
	}
	if second, _ := utf8.DecodeRuneInString(msg[size:]); unicode.IsUpper(second) || unicode.IsDigit(second) {
		return msg // an acronym: CRC, RPC, ID
	}
	return string(unicode.ToLower(first)) + msg[size:]
}

// ourArgs returns raft's key/value pairs as slog attributes in the style of
// ours: keys in snake_case ("previous-index" and "baseIndex" become
// "previous_index" and "base_index"), "error" as "err", and values that
// hclog would format (hclog.Fmt) formatted.
func ourArgs(args []any) []any {
	out := make([]any, 0, len(args))
	for i := 0; i < len(args); i += 2 {
		if i+1 == len(args) {
			// hclog's name for a value without a key.
			out = append(out, slog.Any("extra_value", args[i]))
			break
		}
		key, ok := args[i].(string)
		if !ok {
			key = fmt.Sprint(args[i])
		}
		v := args[i+1]
		if f, ok := v.(hclog.Format); ok && len(f) > 0 {
			if format, ok := f[0].(string); ok {
				v = fmt.Sprintf(format, f[1:]...)
			}
		}
		out = append(out, slog.Any(snakeCase(key), v))
	}
	return out
}

// snakeCase writes a raft attribute key as ours are written.
func snakeCase(key string) string {
	if key == "error" {
		return "err"
	}
	var b strings.Builder
	prevLower := false
	for _, r := range key {
		switch {
		case r == '-' || r == ' ' || r == '.':
			b.WriteByte('_')
			prevLower = false
			continue
		case unicode.IsUpper(r):
			if prevLower {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
			prevLower = false
		default:
			prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelDebug
	}
}

// Log implements hclog.Logger.
func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off {
		return
	}
	lv := slogLevel(level)
	key := peerOf(args)
	switch {
	case lv == slog.LevelWarn && quietWarning(msg):
		// Expected at every start and after every leader change; without
		// a quorum, at every election timeout: counted like a warning
		// about a peer.
		lv, key = slog.LevelInfo, "election"
	case lv == slog.LevelWarn && expectedOnJoin(msg, args):
		lv = slog.LevelDebug
	}
	if lv >= slog.LevelWarn || key == "election" {
		ok, n := a.rep.admit(msg, key, time.Now())
		if !ok {
			return
		}
		if n > 0 {
			args = append(args[:len(args):len(args)], "repeats", n)
		}
	}
	if !a.l.Enabled(context.Background(), lv) {
		return
	}
	a.l.Log(context.Background(), lv, ourMessage(msg), ourArgs(args)...)
}

// Trace implements hclog.Logger.
func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (a *hclogAdapter) Info(msg string, args ...any) { a.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (a *hclogAdapter) Warn(msg string, args ...any) { a.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) enabled(level hclog.Level) bool {
	return a.l.Enabled(context.Background(), slogLevel(level))
}

// IsTrace implements hclog.Logger.
func (a *hclogAdapter) IsTrace() bool { return a.enabled(hclog.Trace) }

// IsDebug implements hclog.Logger.
func (a *hclogAdapter) IsDebug() bool { return a.enabled(hclog.Debug) }

// IsInfo implements hclog.Logger.
func (a *hclogAdapter) IsInfo() bool { return a.enabled(hclog.Info) }

// IsWarn implements hclog.Logger.
func (a *hclogAdapter) IsWarn() bool { return a.enabled(hclog.Warn) }

// IsError implements hclog.Logger.
func (a *hclogAdapter) IsError() bool { return a.enabled(hclog.Error) }

// ImpliedArgs implements hclog.Logger.
func (a *hclogAdapter) ImpliedArgs() []any { return a.implied }

// With implements hclog.Logger.
func (a *hclogAdapter) With(args ...any) hclog.Logger {
	return newAdapter(a.base, a.name, append(append([]any(nil), a.implied...), args...), a.rep)
}

// Name implements hclog.Logger.
func (a *hclogAdapter) Name() string { return a.name }

// Named implements hclog.Logger.
func (a *hclogAdapter) Named(name string) hclog.Logger {
	if a.name != "" {
		name = a.name + "." + name
	}
	return a.ResetNamed(name)
}

// ResetNamed implements hclog.Logger.
func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return newAdapter(a.base, name, a.implied, a.rep)
}

// SetLevel implements hclog.Logger; the slog handler decides the level.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

// GetLevel implements hclog.Logger.
func (a *hclogAdapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Warn, hclog.Error} {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

// StandardLogger implements hclog.Logger.
func (a *hclogAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(a.l.Handler(), slog.LevelDebug)
}

// StandardWriter implements hclog.Logger.
func (a *hclogAdapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return a.StandardLogger(opts).Writer()
}
