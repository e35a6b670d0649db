package proxy

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// logEvery is how often one kind of repeated warning is logged at most; the repeats in between
// are counted and reported with the next line (metrics count every one).
const logEvery = 10 * time.Second

// rateLog writes warnings of a fixed set of kinds, each kind at most once per logEvery.
type rateLog struct {
	log   *slog.Logger
	clock func() time.Time

	mu    sync.Mutex
	kinds map[string]*rateKind // the kinds are constants of wxgate's or fasthttp's code
}

// rateKind is the rate state of one warning kind.
type rateKind struct {
	last       time.Time
	suppressed int
}

func newRateLog(log *slog.Logger, clock func() time.Time) *rateLog {
	return &rateLog{log: log, clock: clock, kinds: map[string]*rateKind{}}
}

// maxRateKinds bounds the kinds remembered: kinds may hold bounded pieces of what a caller sent
// (a refusal's reason), so past it the memory starts over rather than grow.
const maxRateKinds = 4096

// warn logs msg with args unless a warning of this kind was logged less than logEvery ago.
func (l *rateLog) warn(kind, msg string, args ...any) {
	l.at(slog.LevelWarn, kind, msg, args...)
}

// error is warn at the error level.
func (l *rateLog) error(kind, msg string, args ...any) {
	l.at(slog.LevelError, kind, msg, args...)
}

// at logs msg at level unless a line of this kind was logged less than logEvery ago.
func (l *rateLog) at(level slog.Level, kind, msg string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	now := l.clock()
	l.mu.Lock()
	k := l.kinds[kind]
	if k == nil {
		if len(l.kinds) >= maxRateKinds {
			clear(l.kinds)
		}
		k = &rateKind{}
		l.kinds[kind] = k
	} else if now.Sub(k.last) < logEvery {
		k.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	l.mu.Unlock()
	l.log.Log(context.Background(), level, msg, append(args, "repeats_suppressed", suppressed)...)
}

// fastLogger is the fasthttp.Logger of every fasthttp server and client wxgate runs. fasthttp's
// messages carry raw request and response bytes in their arguments (a malformed request is
// quoted whole, session keys included), so only the constant text of each message is written,
// cut where its first argument would start, and each kind at most once per logEvery.
type fastLogger struct {
	rate  *rateLog
	where string // "callback listener", "upstream", ...
}

// Printf logs format's constant text, never args.
func (l fastLogger) Printf(format string, _ ...any) {
	l.rate.warn(l.where+"\x00"+format, "fasthttp: "+fastLogText(format), "where", l.where)
}

// fastLogText is format up to its first verb, without the punctuation that led into it.
func fastLogText(format string) string {
	if i := strings.IndexByte(format, '%'); i >= 0 {
		format = format[:i]
	}
	return strings.TrimRight(format, " :=(\"'\n")
}
