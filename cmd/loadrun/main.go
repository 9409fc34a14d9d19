// Command loadrun measures the gateway over HTTP on loopback and writes the
// figures to a Markdown file (make bench). For each database engine it builds
// and starts the real gateway as a separate process, seeds it, and drives
// read by id, create and a 2-entry transaction at concurrency 1 and 32. Next
// to them it measures a bare net/http handler (also its own process) serving
// the same bytes as the read: the ceiling for this machine.
//
// Every run is bounded in time and in requests and talks only to 127.0.0.1.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

func main() {
	out := flag.String("out", "bench/results.md", "Markdown file for the figures")
	gobench := flag.String("gobench", "", "file with `go test -bench` output to include")
	dur := flag.Duration("duration", 5*time.Second, "duration of each measurement")
	maxReq := flag.Int("max-requests", 200000, "request cap of each measurement")
	bare := flag.String("serve-bare", "", "internal: serve the bare ceiling handler on this address")
	patients := flag.Int("search-patients", 100_000, "Patients generated for the search measurements (0: skip them)")
	observations := flag.Int("search-observations", 1_000_000, "Observations generated for the search measurements")
	seedOnly := flag.String("seed-only", "", "seed the search data set into this database (with -keystore) and exit, for EXPLAIN sessions")
	keystore := flag.String("keystore", "seed-keys.json", "keystore file for -seed-only and -search-only")
	searchOnly := flag.String("search-only", "", "measure the search scenarios on this database, seeded before with -seed-only, and print the figures")
	flag.Parse()
	if *searchOnly != "" {
		tmp, _ := os.MkdirTemp("", "loadrun")
		defer os.RemoveAll(tmp)
		bin := filepath.Join(tmp, "gateway")
		if err := exec.Command("go", "build", "-o", bin, "./cmd/gateway").Run(); err != nil {
			fmt.Fprintln(os.Stderr, "loadrun: build:", err)
			os.Exit(1)
		}
		if _, err := searchScenarios(bin, "search-only", *searchOnly, *keystore, *patients, *observations, *dur, *maxReq); err != nil {
			fmt.Fprintln(os.Stderr, "loadrun:", err)
			os.Exit(1)
		}
		return
	}
	if *seedOnly != "" {
		took, err := seedSearch(context.Background(), *seedOnly, *keystore, *patients, *observations)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadrun:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "seeded in", took)
		return
	}
	if *bare != "" {
		serveBare(*bare)
		return
	}
	if err := run(*out, *gobench, *dur, *maxReq, *patients, *observations); err != nil {
		fmt.Fprintln(os.Stderr, "loadrun:", err)
		os.Exit(1)
	}
}

// sample is the read body the ceiling serves: a stored Patient's bytes.
var sample []byte

type result struct {
	engine, scenario string
	concurrency      int
	requests, errors int
	rps              float64
	p50, p99         time.Duration
	// bracket is, for a read by id, the mean rate of the ceiling runs
	// just before and just after it at the same concurrency.
	bracket float64
}

func run(out, gobench string, dur time.Duration, maxReq, patients, observations int) error {
	tmp, err := os.MkdirTemp("", "loadrun")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "gateway")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gateway")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build gateway: %w", err)
	}
	var results []result
	var notes []string
	defer stopBare()

	engines := []struct{ name, dsn string }{{"SQLite", filepath.Join(tmp, "bench.db")}}
	if dsn, drop, err := postgresDB(); err != nil {
		notes = append(notes, "PostgreSQL not measured: "+err.Error())
	} else {
		defer drop()
		engines = append(engines, struct{ name, dsn string }{"PostgreSQL", dsn})
	}
	for _, e := range engines {
		rs, err := measureGateway(bin, tmp, e.name, e.dsn, dur, maxReq)
		if err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		results = append(results, rs...)
	}
	ceiling, err := measureCeiling(dur, maxReq)
	if err != nil {
		return err
	}
	results = append(results, ceiling...)
	if patients > 0 {
		searchEngines := []struct{ name, dsn string }{{"SQLite", filepath.Join(tmp, "search.db")}}
		if dsn, drop, err := postgresDB(); err == nil {
			defer drop()
			searchEngines = append(searchEngines, struct{ name, dsn string }{"PostgreSQL", dsn})
		}
		for _, e := range searchEngines {
			rs, note, err := measureSearch(bin, tmp, e.name, e.dsn, patients, observations, dur, maxReq)
			if err != nil {
				return fmt.Errorf("%s search: %w", e.name, err)
			}
			results = append(results, rs...)
			notes = append(notes, note)
		}
	}
	return write(out, gobench, results, notes, dur)
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitUp(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come up", url)
}

const patient = `{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"name":[{"use":"official","family":"Smith","given":["Jane","Mary"]}],"gender":"female","birthDate":"1950-02-01","address":[{"line":["1 High Street"],"city":"Leeds","postalCode":"LS1 1AA"}]}`

const transaction = `{"resourceType":"Bundle","type":"transaction","entry":[
{"fullUrl":"urn:uuid:4d2b7c36-2b51-4d6c-9c3e-0f6f6d2b0c11","resource":` + patient + `,"request":{"method":"POST","url":"Patient"}},
{"resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"273335000","display":"Oxford hip score"}]},"subject":{"reference":"urn:uuid:4d2b7c36-2b51-4d6c-9c3e-0f6f6d2b0c11"},"effectiveDateTime":"2026-11-01","valueInteger":42},"request":{"method":"POST","url":"Observation"}}]}`

func measureGateway(bin, tmp, engine, dsn string, dur time.Duration, maxReq int) ([]result, error) {
	base, stop, err := startGateway(bin, dsn, filepath.Join(tmp, engine+"-keys.json"))
	if err != nil {
		return nil, err
	}
	defer stop()
	var ids []string
	var k conn
	defer k.close()
	for i := 0; i < 1000; i++ {
		status, body, err := k.do("POST", base+"/Patient", []byte(patient))
		if err != nil || status != 201 {
			return nil, fmt.Errorf("seed: %d %v %s", status, err, body)
		}
		var p struct{ ID string }
		json.Unmarshal(body, &p)
		ids = append(ids, p.ID)
		if sample == nil {
			sample = bytes.Clone(body) // body is k's buffer
		}
	}
	scenarios := []struct {
		name string
		fn   func(*conn) (int, error)
		want int
	}{
		{"read by id", func(k *conn) (int, error) {
			s, _, err := k.do("GET", base+"/Patient/"+ids[rand.IntN(len(ids))], nil)
			return s, err
		}, 200},
		{"create", func(k *conn) (int, error) { s, _, err := k.do("POST", base+"/Patient", []byte(patient)); return s, err }, 201},
		{"transaction (Patient + Observation)", func(k *conn) (int, error) {
			s, _, err := k.do("POST", base, []byte(transaction))
			return s, err
		}, 200},
	}
	var out []result
	for _, sc := range scenarios {
		for _, c := range []int{1, 32} {
			// The machine's speed drifts by tens of percent over minutes,
			// so a read is compared with ceiling runs on either side of it.
			var before result
			if sc.name == "read by id" {
				if before, err = ceilingRun(c, dur, maxReq); err != nil {
					return nil, err
				}
			}
			r := load(sc.fn, sc.want, c, dur, maxReq)
			r.engine, r.scenario, r.concurrency = engine, sc.name, c
			if sc.name == "read by id" {
				after, err := ceilingRun(c, dur, maxReq)
				if err != nil {
					return nil, err
				}
				r.bracket = (before.rps + after.rps) / 2
			}
			fmt.Fprintf(os.Stderr, "%s %s c=%d: %.0f req/s p50 %v p99 %v errors %d\n", engine, sc.name, c, r.rps, r.p50, r.p99, r.errors)
			out = append(out, r)
		}
	}
	return out, nil
}

// startGateway runs the gateway binary on a free loopback port over dsn and
// waits until it is ready; stop ends it gracefully.
func startGateway(bin, dsn, keystore string) (base string, stop func(), err error) {
	addr := freeAddr()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "GATEWAY_ADDR="+addr, "GATEWAY_DB="+dsn, "GATEWAY_KEYSTORE="+keystore)
	// The gateway logs every request; nil sends its output to the null
	// device. io.Discard would make os/exec copy it through a pipe into
	// this process, which then spends the shared cores reading logs
	// (measured: read by id at concurrency 1, 6,237/s so, 7,356–7,458/s to
	// the null device).
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
	if err := waitUp("http://" + addr + "/readyz"); err != nil {
		stop()
		return "", nil, err
	}
	return "http://" + addr + "/fhir", stop, nil
}

func serveBare(addr string) {
	body, _ := io.ReadAll(os.Stdin)
	http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json; charset=utf-8")
		w.Write(body)
	}))
}

// bare is the bare net/http server of the ceiling, started on first use
// (it serves sample, which the first gateway's seeding sets).
var bare struct {
	once sync.Once
	addr string
	err  error
	cmd  *exec.Cmd
}

// ceilingRun measures the bare handler at concurrency c.
func ceilingRun(c int, dur time.Duration, maxReq int) (result, error) {
	bare.once.Do(func() {
		self, err := os.Executable()
		if err != nil {
			bare.err = err
			return
		}
		bare.addr = freeAddr()
		bare.cmd = exec.Command(self, "-serve-bare", bare.addr)
		bare.cmd.Stdin = bytes.NewReader(sample)
		if bare.err = bare.cmd.Start(); bare.err != nil {
			return
		}
		bare.err = waitUp("http://" + bare.addr + "/")
	})
	if bare.err != nil {
		return result{}, bare.err
	}
	r := load(func(k *conn) (int, error) {
		s, _, err := k.do("GET", "http://"+bare.addr+"/fhir/Patient/x", nil)
		return s, err
	}, 200, c, dur, maxReq)
	r.engine, r.scenario, r.concurrency = "bare net/http (ceiling)", "same bytes as read", c
	fmt.Fprintf(os.Stderr, "ceiling c=%d: %.0f req/s p50 %v p99 %v\n", c, r.rps, r.p50, r.p99)
	return r, nil
}

// stopBare ends the ceiling's server, if it started.
func stopBare() {
	if bare.cmd != nil && bare.cmd.Process != nil {
		bare.cmd.Process.Kill()
		bare.cmd.Wait()
	}
}

func measureCeiling(dur time.Duration, maxReq int) ([]result, error) {
	var out []result
	for _, c := range []int{1, 32} {
		r, err := ceilingRun(c, dur, maxReq)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// load runs fn from c workers, each with its own connection, until dur
// passes or maxReq requests are made.
func load(fn func(*conn) (int, error), want, c int, dur time.Duration, maxReq int) result {
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var (
		n, errs atomic.Int64
		mu      sync.Mutex
		lat     []time.Duration
		wg      sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var k conn
			defer k.close()
			var mine []time.Duration
			for ctx.Err() == nil && n.Add(1) <= int64(maxReq) {
				t0 := time.Now()
				status, err := fn(&k)
				mine = append(mine, time.Since(t0))
				if err != nil || status != want {
					errs.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := result{requests: len(lat), errors: int(errs.Load())}
	if len(lat) > 0 {
		r.rps = float64(len(lat)) / elapsed.Seconds()
		r.p50 = lat[len(lat)*50/100]
		r.p99 = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	return r
}

func postgresDB() (string, func(), error) {
	admin := os.Getenv("GATEWAY_TEST_POSTGRES")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("gateway_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		conn.Close(ctx)
		return "", nil, err
	}
	conn.Close(ctx)
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	}
	return strings.Replace(admin, "/postgres?", "/"+name+"?", 1), drop, nil
}

func write(out, gobench string, results []result, notes []string, dur time.Duration) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmark results\n\nWritten by `make bench` on %s: %d CPUs, %s, %s/%s. ",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "Each row is one %v run over HTTP/1.1 keep-alive on 127.0.0.1; the gateway runs as its own process (request logging on, to the null device; development keystore, envelope encryption on every write and read), and the load generator shares the machine's cores with it (each of its workers keeps one connection and writes and reads HTTP/1.1 itself, as wrk does, to take as little CPU as it can). PostgreSQL is the machine's own server, reached over TCP on 127.0.0.1 without TLS (sslmode=disable, unless GATEWAY_TEST_POSTGRES names another URL). The search data set is seeded, then ANALYZEd (SQLite) or VACUUM ANALYZEd (PostgreSQL, as autovacuum leaves a database in use), and each search scenario runs %v unmeasured at concurrency 4 before its rows.\n\n", dur, searchWarmUp)
	b.WriteString("| engine | interaction | concurrency | requests | errors | req/s | p50 | p99 |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	var ceiling = map[int]float64{}
	for _, r := range results {
		if strings.HasPrefix(r.engine, "bare") {
			ceiling[r.concurrency] = r.rps
		}
	}
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %.0f | %s | %s |\n", r.engine, r.scenario, r.concurrency, r.requests, r.errors, r.rps, fmtDur(r.p50), fmtDur(r.p99))
	}
	b.WriteString("\nSearch targets: p99 < 20 ms. Small transactions on PostgreSQL: ≥ 1,400/s.\n")
	b.WriteString("\nRead by id as a share of the ceiling (target ≥ 60%), against the mean of the ceiling runs just before and just after it (the host's speed drifts over minutes), and against the ceiling rows above:\n\n")
	for _, r := range results {
		if r.scenario == "read by id" && r.bracket > 0 && ceiling[r.concurrency] > 0 {
			fmt.Fprintf(&b, "- %s, concurrency %d: %.0f%% (ceiling beside it %.0f/s); %.0f%% of the ceiling row\n",
				r.engine, r.concurrency, 100*r.rps/r.bracket, r.bracket, 100*r.rps/ceiling[r.concurrency])
		}
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	if gobench != "" {
		if g, err := os.ReadFile(gobench); err == nil {
			b.WriteString("\n## Go benchmarks (server side, no network)\n\n```\n")
			for _, line := range strings.Split(string(g), "\n") {
				if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "pkg:") || strings.HasPrefix(line, "cpu:") {
					b.WriteString(line + "\n")
				}
			}
			b.WriteString("```\n")
			b.WriteString("\nTargets: encryption costs < 15% on reads (BenchmarkReadEncryption); ≤ 10 Vault calls per 1,000 imported resources (BenchmarkVaultCallsPerImport); the records pipeline, map + validate + store, ≥ 2,500 FHIR resources/s (BenchmarkIngest, 50-record batches of synthetic records, 4 workers).\n")
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000)
}
