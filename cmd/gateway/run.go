package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/riverqueue/river"

	"github.com/promsgateway/gateway/fhir/rest"
	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store/sqlstore"
	"github.com/promsgateway/gateway/mapping/ingest"
	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/devkeystore"
	"github.com/promsgateway/gateway/vault/hcvault"
	"github.com/promsgateway/gateway/vault/pseudonym"
	"github.com/promsgateway/gateway/vault/rotation"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "serve":
		return serve(ctx, getenv, stderr, nil)
	case "reindex":
		return reindex(ctx, getenv, stdout, stderr)
	case "import":
		return importCommand(ctx, args[1:], getenv, stdout, stderr)
	case "generate":
		return generateCommand(args[1:], stdout, stderr)
	case "keys":
		return keysCommand(ctx, args[1:], getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage: gateway [serve|import|generate|reindex|keys rotate|keys status|version]

  serve        serve the FHIR R4 API (default); the PROMs platform's records
               are taken at POST /internal/v1/records
  import [-workers N] FILE|DIR
               map and store the records of NDJSON (.ndjson, .jsonl) and CSV
               exports; resumable (FILE.checkpoint), rejected records listed
               in FILE.errors.csv
  generate [-patients N] [-seed S] [-invalid 0-1] [-format ndjson|csv] [-out FILE]
               write synthetic records for demonstrations and tests
  reindex      rebuild the search index of every resource (after a change of
               search parameter definitions); safe to interrupt and rerun
  keys rotate  rotate the Vault key that wraps data keys (with the operator's
               VAULT_TOKEN); running gateways rewrap every stored data key in
               the background, then retire the old key versions
  keys status  show the progress of key rotations
  version      print the version

Environment:
  GATEWAY_ADDR        listen address (default :8080)
  GATEWAY_DB          SQLite file path or postgres:// URL (default data/gateway.db)
  GATEWAY_KEYS        dev (the development keystore, default) or vault
  GATEWAY_KEYSTORE    development keystore file (default data/dev-keystore.json)
  GATEWAY_DATA_KEY_MAX_AGE  how long one data key encrypts (default 10m)
  VAULT_ADDR, VAULT_TOKEN, GATEWAY_VAULT_*  Vault login and keys (GATEWAY_KEYS=vault;
                      see README.md)
  GATEWAY_ENV         "production" refuses development-only parts
  GATEWAY_BASE_URL    public FHIR base URL (default: from each request's Host)
  GATEWAY_MAX_BODY_BYTES, GATEWAY_MAX_DEPTH, GATEWAY_MAX_BUNDLE_ENTRIES  request limits
  GATEWAY_UPDATE_CREATE               true|false: may update create? (default true)
  GATEWAY_CONDITIONAL_DELETE_MULTIPLE true|false (default true)
  GATEWAY_READ_CACHE_MB  memory for reads by id, sealed as stored (default 64; 0: off)
  GATEWAY_LOG_LEVEL   debug|info|warn|error (default info)
  GATEWAY_DEBUG_ADDR  if set, serve Go profiling (pprof) on this address
  GOGC                the Go garbage collector's target (default here 400)
  GOMEMLIMIT          a soft cap on the Go heap (default: 90% of the cgroup's limit, if any)`

// settings is the gateway's configuration, read from the environment.
type settings struct {
	addr, db, keystore string
	keys               string // dev | vault
	production         bool
	vault              hcvault.Config
	dataKeyMaxAge      time.Duration
	api                rest.Config
	logLevel           slog.Level
	readCacheMB        int64
}

func readSettings(getenv func(string) string) (settings, error) {
	s := settings{
		addr:       or(getenv("GATEWAY_ADDR"), ":8080"),
		db:         or(getenv("GATEWAY_DB"), "data/gateway.db"),
		keystore:   or(getenv("GATEWAY_KEYSTORE"), "data/dev-keystore.json"),
		keys:       or(getenv("GATEWAY_KEYS"), "dev"),
		production: getenv("GATEWAY_ENV") == "production",
		api:        rest.DefaultConfig(),
	}
	s.dataKeyMaxAge = vault.DataKeyMaxAge
	if v := getenv("GATEWAY_DATA_KEY_MAX_AGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return s, fmt.Errorf("GATEWAY_DATA_KEY_MAX_AGE=%q: want a positive Go duration such as 10m", v)
		}
		s.dataKeyMaxAge = d
	}
	if s.keys != "dev" && s.keys != "vault" {
		return s, fmt.Errorf("GATEWAY_KEYS=%q: want dev or vault", s.keys)
	}
	if s.keys == "vault" {
		var err error
		if s.vault, err = hcvault.ConfigFromEnv(getenv); err != nil {
			return s, err
		}
	}
	s.api.BaseURL = getenv("GATEWAY_BASE_URL")
	s.api.SoftwareVersion = version
	var err error
	if getenv("GATEWAY_READ_CACHE_MB") != "0" {
		if s.readCacheMB, err = intVar(getenv, "GATEWAY_READ_CACHE_MB", 64); err != nil {
			return s, err
		}
	}
	if s.api.MaxBodyBytes, err = intVar(getenv, "GATEWAY_MAX_BODY_BYTES", s.api.MaxBodyBytes); err != nil {
		return s, err
	}
	depth, err := intVar(getenv, "GATEWAY_MAX_DEPTH", int64(s.api.MaxDepth))
	if err != nil {
		return s, err
	}
	s.api.MaxDepth = int(depth)
	entries, err := intVar(getenv, "GATEWAY_MAX_BUNDLE_ENTRIES", int64(s.api.MaxBundleEntries))
	if err != nil {
		return s, err
	}
	s.api.MaxBundleEntries = int(entries)
	if s.api.UpdateCreate, err = boolVar(getenv, "GATEWAY_UPDATE_CREATE", s.api.UpdateCreate); err != nil {
		return s, err
	}
	if s.api.ConditionalDeleteMultiple, err = boolVar(getenv, "GATEWAY_CONDITIONAL_DELETE_MULTIPLE", s.api.ConditionalDeleteMultiple); err != nil {
		return s, err
	}
	if err := s.logLevel.UnmarshalText([]byte(or(getenv("GATEWAY_LOG_LEVEL"), "info"))); err != nil {
		return s, fmt.Errorf("GATEWAY_LOG_LEVEL: %w", err)
	}
	return s, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func intVar(getenv func(string) string, name string, def int64) (int64, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
	}
	return n, nil
}

func boolVar(getenv func(string) string, name string, def bool) (bool, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", name, v)
	}
	return b, nil
}

// serve runs the gateway until ctx ends, then drains in-flight requests.
// When ready is not nil it receives the bound address once listening.
func serve(ctx context.Context, getenv func(string) string, logOut io.Writer, ready chan<- string) error {
	lines := newLineWriter(logOut)
	flushCtx, stopFlush := context.WithCancel(context.Background())
	flushed := make(chan struct{})
	go func() { lines.run(flushCtx); close(flushed) }()
	defer func() { stopFlush(); <-flushed }()
	cfg, log, err := setup(getenv, lines)
	if err != nil {
		return err
	}
	log = slog.New(flushAtWarn{log.Handler(), lines})
	keys, st, closeAll, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	if cfg.readCacheMB > 0 {
		if err := st.EnableReadCache(ctx, int(cfg.readCacheMB)<<20, 10*time.Millisecond); err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	api := rest.NewServer(cfg.api, st, keys, log, rest.NewMetrics(reg))
	if p, ok := keys.(vault.Pseudonyms); ok {
		api.EnableReidentify(pseudonym.New(p, st))
	}
	records := ingest.New(committer(api, log))
	records.Log = log
	api.Mount(http.MethodPost, "/internal/v1/records", "records", recordsHandler(records, cfg.api.MaxBodyBytes))
	handler := api.Handler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		rest.Check{Name: "database", Fn: st.Ping},
		rest.Check{Name: map[string]string{"dev": "keys", "vault": "vault"}[cfg.keys], Fn: keys.Ping})

	if c, ok := keys.(*hcvault.Client); ok {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gateway_vault_requests_total",
			Help: "Requests to Vault for keys, digests, escrows and secrets (logins, renewals and health checks excluded).",
		}, func() float64 { return float64(c.Calls()) }))
		// Background jobs: the rewrap after a key rotation.
		stop, err := startJobs(ctx, cfg, st, c, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if dbg := getenv("GATEWAY_DEBUG_ADDR"); dbg != "" {
		// Profiling endpoints on their own listener, never on the API port.
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		dl, err := net.Listen("tcp", dbg)
		if err != nil {
			return fmt.Errorf("GATEWAY_DEBUG_ADDR: %w", err)
		}
		dsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go dsrv.Serve(dl)
		defer dsrv.Close()
		log.Warn("profiling endpoints enabled", "addr", dl.Addr().String())
	}
	log.Info("gateway listening", "addr", ln.Addr().String(), "fhir", "/fhir", "database", st.Engine(), "keys", keys.Name())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// setup reads the settings and makes the JSON logger they ask for.
func setup(getenv func(string) string, logOut io.Writer) (settings, *slog.Logger, error) {
	cfg, err := readSettings(getenv)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, slog.New(newJSONHandler(logOut, cfg.logLevel)), nil
}

// openStore opens the key holder and the resource store the settings name;
// closeAll closes both.
func openStore(ctx context.Context, cfg settings, log *slog.Logger) (keys vault.Keys, st *sqlstore.Store, closeAll func(), err error) {
	closeKeys := func() {}
	switch {
	case cfg.keys == "vault":
		c, err := hcvault.Connect(ctx, cfg.vault, log)
		if err != nil {
			return nil, nil, nil, err
		}
		keys, closeKeys = c, c.Close
	case cfg.production:
		return nil, nil, nil, errors.New("GATEWAY_ENV=production needs GATEWAY_KEYS=vault: the development keystore keeps its key beside the data; refusing to start")
	default:
		if keys, err = devkeystore.Open(cfg.keystore, cfg.production, log); err != nil {
			return nil, nil, nil, err
		}
	}
	st, err = sqlstore.Open(ctx, cfg.db, vault.NewEnvelopeMaxAge(keys, cfg.dataKeyMaxAge))
	if err != nil {
		closeKeys()
		return nil, nil, nil, err
	}
	return keys, st, func() { st.Close(); closeKeys() }, nil
}

// reindex rebuilds the search index from the embedded definitions,
// reporting progress on stdout.
func reindex(ctx context.Context, getenv func(string) string, stdout, logOut io.Writer) error {
	cfg, log, err := setup(getenv, logOut)
	if err != nil {
		return err
	}
	keys, st, closeAll, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	registry := search.R4()
	failures := 0
	start := time.Now()
	err = st.Reindex(ctx, func(ctx context.Context, typ string, body []byte) ([]search.Row, error) {
		rows, errs := registry.Extract(typ, body)
		for _, e := range errs {
			failures++
			log.Error("search index extraction failed", "type", typ, "error", e)
		}
		return search.BlindRows(ctx, keys, typ, rows)
	}, func(done, total int) {
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(done) / float64(total)
		}
		fmt.Fprintf(stdout, "reindexed %d of %d resources (%.0f%%)\n", done, total, pct)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reindex finished in %s; %d parameter values could not be extracted (see the log)\n", time.Since(start).Round(time.Millisecond), failures)
	return nil
}

// startJobs runs the job queue's workers until the returned stop is called.
func startJobs(ctx context.Context, cfg settings, st *sqlstore.Store, keys *hcvault.Client, log *slog.Logger) (stop func(), err error) {
	workers := river.NewWorkers()
	w := &rotation.Worker{Store: st, Keys: keys, Slice: time.Minute, Batch: 500, Log: log,
		// Every gateway on this database must use no longer a data-key
		// lifetime than this one (GATEWAY_DATA_KEY_MAX_AGE).
		Grace: cfg.dataKeyMaxAge + cfg.dataKeyMaxAge/10 + time.Second}
	river.AddWorker(workers, w)
	q, err := st.Queue(ctx, workers, log)
	if err != nil {
		return nil, err
	}
	w.Queue = q
	if err := q.Start(context.WithoutCancel(ctx)); err != nil {
		q.Close()
		return nil, err
	}
	return func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		q.Stop(stopCtx)
		q.Close()
	}, nil
}

// keysCommand runs "keys rotate" and "keys status".
func keysCommand(ctx context.Context, args []string, getenv func(string) string, stdout, logOut io.Writer) error {
	if len(args) != 1 || (args[0] != "rotate" && args[0] != "status") {
		return fmt.Errorf("usage: gateway keys rotate|status")
	}
	cfg, log, err := setup(getenv, logOut)
	if err != nil {
		return err
	}
	if cfg.keys != "vault" {
		return errors.New("keys: key rotation needs GATEWAY_KEYS=vault (the development keystore has one fixed key)")
	}
	keys, st, closeAll, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	if args[0] == "rotate" {
		q, err := st.Queue(ctx, nil, log)
		if err != nil {
			return err
		}
		defer q.Close()
		r, err := rotation.Start(ctx, keys.(*hcvault.Client), st, st.Rotations, q)
		if err != nil {
			return fmt.Errorf("keys rotate: %w", err)
		}
		fmt.Fprintf(stdout, "rotated %s to version %d; a running gateway now rewraps %d stored versions (gateway keys status shows progress)\n",
			cfg.vault.DataKey, r.Target, r.Total)
		return nil
	}
	all, err := st.Rotations(ctx)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		fmt.Fprintln(stdout, "no key rotations")
	}
	for _, r := range all {
		state := "finished " + r.Finished.Format(time.RFC3339) + "; older versions retired"
		if r.Finished.IsZero() {
			state = fmt.Sprintf("pass %d, after version seq %d", r.Pass, r.After)
		}
		fmt.Fprintf(stdout, "version %d (rotated %s, %d versions stored then): %d versions rewrapped so far; %s\n",
			r.Target, r.RotatedAt.Format(time.RFC3339), r.Total, r.Rewrapped, state)
	}
	return nil
}
