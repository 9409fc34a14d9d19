package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the flusher and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Informational lines wait for a flush; a warning takes them and itself
// out at once; nothing is lost or reordered, lines longer than the buffer
// included; the flusher writes out what waits when it stops.
func TestLineWriter(t *testing.T) {
	var out syncBuffer
	w := newLineWriter(&out)
	log := slog.New(flushAtWarn{slog.NewTextHandler(w, nil), w}).With("component", "test")
	long := strings.Repeat("x", lineBufferSize+10)
	steps := []struct {
		log  func()
		want []string // in the output after the step, in order
		not  []string // not yet in the output
	}{
		{func() { log.Info("first") }, nil, []string{"first"}},
		{func() { log.Info("second") }, nil, []string{"second"}},
		{func() { log.Warn("third") }, []string{"first", "second", "third"}, nil},
		{func() { log.Info("fourth") }, nil, []string{"fourth"}},
		{func() { log.Info(long) }, []string{"fourth", long}, nil},
		{func() { log.Error("fifth") }, []string{"third", "fourth", long, "fifth"}, nil},
		{func() { log.Info("sixth") }, nil, []string{"sixth"}},
	}
	for i, st := range steps {
		st.log()
		got := out.String()
		at := 0
		for _, s := range st.want {
			j := strings.Index(got[at:], "msg="+s)
			if j < 0 {
				t.Fatalf("step %d: %.40q not in order in the output", i, s)
			}
			at += j
		}
		for _, s := range st.not {
			if strings.Contains(got, "msg="+s) {
				t.Fatalf("step %d: %q written before a flush", i, s)
			}
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.Contains(l, "component=test") {
			t.Errorf("a line lost its attributes: %.80q", l)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "msg=sixth") {
		if time.Now().After(deadline) {
			t.Fatal("the flusher did not write out a waiting line")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	// Stopped, the flusher writes out what waits before it returns (with
	// its context already ended no tick comes first).
	log.Info("seventh")
	if strings.Contains(out.String(), "msg=seventh") {
		t.Fatal("a line was written before a flush")
	}
	w.run(ctx)
	if !strings.Contains(out.String(), "msg=seventh") {
		t.Error("the flusher's last flush did not write out a waiting line")
	}
}
