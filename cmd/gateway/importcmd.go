package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/promsgateway/gateway/fhir/rest"
	"github.com/promsgateway/gateway/mapping"
	"github.com/promsgateway/gateway/mapping/ingest"
	"github.com/promsgateway/gateway/mapping/synthetic"
)

// importCommand runs "gateway import [-workers N] FILE|DIR": the records of
// NDJSON and CSV exports mapped and stored as the records API would, with a
// progress line on stderr, a checkpoint to resume from and an error report
// per file (mapping/ingest.FileImport).
func importCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workers := fs.Int("workers", 4, "records mapped and stored at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *workers < 1 {
		return errors.New("usage: gateway import [-workers N] FILE|DIR (.ndjson, .jsonl or .csv)")
	}
	cfg, log, err := setup(getenv, stderr)
	if err != nil {
		return err
	}
	keys, st, closeAll, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeAll()
	api := rest.NewServer(cfg.api, st, keys, log, nil)
	in := ingest.New(committer(api, log))
	in.Workers, in.Log = *workers, log
	bar := &progressBar{w: stderr}
	counts, err := in.ImportFiles(ctx, fs.Arg(0), bar.show)
	fmt.Fprintln(stdout, "imported:", summary(counts))
	return err
}

// progressBar redraws one status line at most five times a second.
type progressBar struct {
	w    io.Writer
	last time.Time
}

func (b *progressBar) show(p ingest.Progress) {
	if !p.Finished && time.Since(b.last) < 200*time.Millisecond {
		return
	}
	b.last = time.Now()
	pct := 100.0
	if p.Total > 0 {
		pct = 100 * float64(p.Done) / float64(p.Total)
	}
	const width = 30
	filled := int(pct / 100 * width)
	line := fmt.Sprintf("\r%s [%s%s] %d/%d %3.0f%%  %.0f records/s  ETA %s  %s",
		p.File, strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.Done, p.Total, pct, p.Rate(),
		p.ETA().Round(time.Second), summary(p.Counts))
	fmt.Fprint(b.w, line)
	if p.Finished {
		if p.Skipped > 0 {
			fmt.Fprintf(b.w, "  (resumed after %d records done before)", p.Skipped)
		}
		fmt.Fprintln(b.w)
	}
}

func summary(counts map[string]int) string {
	var parts []string
	for _, k := range []string{ingest.Created, ingest.Updated, ingest.Unchanged, ingest.Rejected, ingest.Failed} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// generateCommand runs "gateway generate -patients N -seed S": synthetic
// records (mapping/synthetic) as NDJSON or CSV on stdout or into -out.
func generateCommand(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("patients", 100, "how many patients (one record each)")
	seed := fs.Uint64("seed", 1, "the same seed makes the same records")
	invalid := fs.Float64("invalid", 0, "share of records (0-1) made invalid on purpose: "+strings.Join(synthetic.Mistakes, ", "))
	format := fs.String("format", "ndjson", "ndjson or csv")
	out := fs.String("out", "", "file to write (default stdout)")
	system := fs.String("system", "https://proms.example.org", "the records' source system")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *invalid < 0 || *invalid > 1 || (*format != "ndjson" && *format != "csv") || fs.NArg() != 0 {
		return errors.New("usage: gateway generate [-patients N] [-seed S] [-invalid 0-1] [-format ndjson|csv] [-out FILE]")
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	g := synthetic.New(synthetic.Options{Seed: *seed, Invalid: *invalid, System: *system, Now: time.Now().UTC()})
	if *format == "csv" {
		records := make([]*mapping.Record, *n)
		for i := range records {
			records[i] = g.Next()
		}
		return ingest.WriteCSV(w, records)
	}
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := 0; i < *n; i++ {
		if err := enc.Encode(g.Next()); err != nil {
			return err
		}
	}
	return bw.Flush()
}
