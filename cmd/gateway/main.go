// Command gateway runs the PROMs FHIR R4 gateway.
//
//	gateway serve    serve the FHIR API (the default)
//
// Configuration is by environment variable; see README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// gcPercent is the garbage collector's target when GOGC is not set: the
// gateway's live heap is small (about 30 MB serving writes, plus the read
// cache) and its garbage is parsing (every write is parsed strictly and
// indexed), so collecting at 400% instead of Go's 100% trades memory for
// CPU. Measured: PostgreSQL import 1,729–1,828 resources/s at 100,
// 1,876–1,883 at 200; the 2-entry transaction at concurrency 32, the
// gateway's CPU per transaction 637–664 µs at 200, 604–613 µs at 400
// (heap in use about 150 MB). GOMEMLIMIT caps it where memory is tight.
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// The heap grows to about (1 + GOGC/100) times what is live, the
		// read cache included: under a container's memory limit the
		// collector works harder as the heap nears nine tenths of it,
		// rather than the process being killed.
		if limit, ok := containerMemoryLimit(); ok {
			debug.SetMemoryLimit(limit / 10 * 9)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

// cgroupMemoryFiles hold the memory limit of the process's cgroup: v2's
// memory.max, then v1's limit_in_bytes.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// containerMemoryLimit returns the memory limit of the process's cgroup,
// when it has one.
func containerMemoryLimit() (int64, bool) {
	for _, f := range cgroupMemoryFiles {
		if b, err := os.ReadFile(f); err == nil {
			return parseMemoryLimit(string(b))
		}
	}
	return 0, false
}

// parseMemoryLimit reads a cgroup memory limit file: a byte count, or
// "max" (v2) or a number near 2^63 (v1) for none.
func parseMemoryLimit(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0, false
	}
	return n, true
}
