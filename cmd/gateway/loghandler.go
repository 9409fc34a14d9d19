package main

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/promsgateway/gateway/fhir/resource"
)

// jsonHandler writes log records as slog.JSONHandler does, byte for byte,
// with no ReplaceAttr and no source. It encodes the records a server logs
// by the thousand itself: a message with attributes of the scalar kinds
// (strings, integers, booleans, durations, times). Every other record
// (floats, Any values such as errors, groups, LogValuers) and every
// handler derived with WithAttrs or WithGroup go to the slog.JSONHandler
// it holds, which writes through the same lock. slog's own encoder, with
// its per-record state and its general time formatting, was a tenth of a
// read by id's instructions.
type jsonHandler struct {
	level slog.Leveler
	out   *lockedWriter
	std   slog.Handler
}

// lockedWriter serialises the Write calls of both encoders on one writer,
// so that lines never interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// newJSONHandler returns a handler writing JSON lines to out for records at
// level and above.
func newJSONHandler(out io.Writer, level slog.Leveler) *jsonHandler {
	lw := &lockedWriter{w: out}
	return &jsonHandler{level: level, out: lw, std: slog.NewJSONHandler(lw, &slog.HandlerOptions{Level: level})}
}

func (h *jsonHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// lineBuffers are the encoding buffers of records; lines longer than
// maxPooledLine are not kept.
var lineBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledLine = 16 << 10

func (h *jsonHandler) Handle(ctx context.Context, r slog.Record) error {
	bp := lineBuffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledLine {
			lineBuffers.Put(bp)
		}
	}()
	b, ok := appendRecord((*bp)[:0], r)
	*bp = b
	if !ok {
		return h.std.Handle(ctx, r)
	}
	_, err := h.out.Write(b)
	return err
}

func (h *jsonHandler) WithAttrs(attrs []slog.Attr) slog.Handler { return h.std.WithAttrs(attrs) }

func (h *jsonHandler) WithGroup(name string) slog.Handler { return h.std.WithGroup(name) }

// appendRecord appends r as slog.JSONHandler writes it, with the newline;
// ok is false when r holds something it leaves to slog.
func appendRecord(b []byte, r slog.Record) (_ []byte, ok bool) {
	b = append(b, '{')
	if !r.Time.IsZero() {
		var fine bool
		if b, fine = appendTimeAttr(b, "time", r.Time); !fine {
			return b, false
		}
		b = append(b, ',')
	}
	b = appendKey(b, "level")
	b = appendString(b, r.Level.String())
	b = append(b, ',')
	b = appendKey(b, "msg")
	b = appendString(b, r.Message)
	ok = true
	r.Attrs(func(a slog.Attr) bool {
		b = append(b, ',')
		v := a.Value
		switch v.Kind() {
		case slog.KindString:
			b = appendKey(b, a.Key)
			b = appendString(b, v.String())
		case slog.KindInt64:
			b = appendKey(b, a.Key)
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindUint64:
			b = appendKey(b, a.Key)
			b = strconv.AppendUint(b, v.Uint64(), 10)
		case slog.KindBool:
			b = appendKey(b, a.Key)
			b = strconv.AppendBool(b, v.Bool())
		case slog.KindDuration:
			b = appendKey(b, a.Key)
			b = strconv.AppendInt(b, int64(v.Duration()), 10)
		case slog.KindTime:
			b, ok = appendTimeAttr(b, a.Key, v.Time())
		default:
			ok = false
		}
		return ok
	})
	return append(b, '}', '\n'), ok
}

func appendKey(b []byte, k string) []byte {
	return append(appendString(b, k), ':')
}

// appendTimeAttr appends "key":"time" in RFC 3339 with nanoseconds, as
// slog does; a year outside 0-9999 is slog's to report.
func appendTimeAttr(b []byte, key string, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y >= 10000 {
		return b, false
	}
	b = appendKey(b, key)
	b = append(b, '"')
	b = appendRFC3339Nano(b, t)
	return append(b, '"'), true
}

// appendRFC3339Nano appends t as t.AppendFormat(b, time.RFC3339Nano) does
// for years 0-9999: fractional seconds without trailing zeros, and the
// zone as Z or ±hh:mm (an offset's seconds, as in some historical zones,
// are dropped). The date, the time to the second and the zone of the last
// second formatted are kept (lastSecond), for the lines logged within it.
func appendRFC3339Nano(b []byte, t time.Time) []byte {
	sec, loc := t.Unix(), t.Location()
	st := lastSecond.Load()
	if st == nil || st.unix != sec || st.loc != loc {
		st = &second{unix: sec, loc: loc, text: string(appendSecond(nil, t)), zone: string(appendZone(nil, t))}
		lastSecond.Store(st)
	}
	b = append(b, st.text...)
	if ns := t.Nanosecond(); ns != 0 {
		digits := 9
		for ns%10 == 0 {
			ns /= 10
			digits--
		}
		b = append(b, '.')
		b = appendDigits(b, ns, digits)
	}
	return append(b, st.zone...)
}

// second is one second of one location, formatted.
type second struct {
	unix       int64
	loc        *time.Location
	text, zone string
}

var lastSecond atomic.Pointer[second]

// appendSecond appends t's date and time to the second: 2006-01-02T15:04:05.
func appendSecond(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	return appendDigits(b, sec, 2)
}

// appendZone appends t's zone offset as RFC 3339 writes it: Z or ±hh:mm.
func appendZone(b []byte, t time.Time) []byte {
	_, offset := t.Zone()
	if offset == 0 {
		return append(b, 'Z')
	}
	zone := offset / 60
	if zone < 0 {
		b = append(b, '-')
		zone = -zone
	} else {
		b = append(b, '+')
	}
	b = appendDigits(b, zone/60, 2)
	b = append(b, ':')
	return appendDigits(b, zone%60, 2)
}

// appendDigits appends n (≥ 0) in exactly width decimal digits, with
// leading zeros; n must have no more digits than that.
func appendDigits(b []byte, n, width int) []byte {
	var d [9]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:width]...)
}

// appendString appends s as slog writes a JSON string.
func appendString(b []byte, s string) []byte { return resource.AppendLogString(b, s) }
