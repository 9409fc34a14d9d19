package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FileImport is one export file to ingest. Records are stored as they are
// read, Workers at a time. The checkpoint (Path + ".checkpoint") records
// the last line up to which every record is done, so an interrupted import
// started again resumes after it (a record done after that line is sent
// again and comes back unchanged). Rejected records go to the error report
// (Path + ".errors.csv": line, record, field, reason), which a resumed
// import appends to. A record that fails (the store or key service is
// unavailable) stops the import: nothing after the checkpoint is lost.
type FileImport struct {
	Path string
	// Progress, if set, is called after each record and once at the end.
	Progress func(Progress)
}

// Progress is how far an import has got.
type Progress struct {
	File string
	// Done counts the records handled in this run, Total those in the file
	// after the checkpoint; Skipped those before it. Counts are the
	// statuses of the records up to the checkpoint, over every run.
	Done, Total, Skipped int
	Counts               map[string]int
	// Checkpoint is the line up to which every record is done.
	Checkpoint int
	Elapsed    time.Duration
	Finished   bool
}

// Rate is records per second in this run.
func (p Progress) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Done) / p.Elapsed.Seconds()
}

// ETA is the expected time to finish at the current rate.
func (p Progress) ETA() time.Duration {
	r := p.Rate()
	if r == 0 {
		return 0
	}
	return time.Duration(float64(p.Total-p.Done) / r * float64(time.Second))
}

// checkpoint is the resumable state of a file import.
type checkpoint struct {
	// Fingerprint identifies the file's content (size and digest), so a
	// checkpoint is never applied to another file.
	Fingerprint string `json:"fingerprint"`
	// Line is the last line up to which every record is done.
	Line   int            `json:"line"`
	Counts map[string]int `json:"counts"`
	// Report is the error report's size when the checkpoint was saved: a
	// resumed import cuts off rows written after it, which it writes again.
	Report int64 `json:"report"`
}

// Formats: how a file's records are read, by its extension.
func reader(path string) (func(io.Reader, func(Line) error) error, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".ndjson", ".jsonl":
		return ReadNDJSON, nil
	case ".csv":
		return ReadCSV, nil
	}
	return nil, fmt.Errorf("%s: import reads .ndjson, .jsonl and .csv files", path)
}

// ImportFiles imports path: a file, or every .ndjson, .jsonl and .csv file
// of a directory in name order (error reports and checkpoints are not
// imported).
func (in *Ingester) ImportFiles(ctx context.Context, path string, progress func(Progress)) (map[string]int, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if st.IsDir() {
		files = nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || strings.HasSuffix(name, ".errors.csv") {
				continue
			}
			if _, err := reader(name); err == nil {
				files = append(files, filepath.Join(path, name))
			}
		}
		sort.Strings(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("%s has no .ndjson, .jsonl or .csv files", path)
		}
	}
	total := map[string]int{}
	for _, f := range files {
		counts, err := in.ImportFile(ctx, FileImport{Path: f, Progress: progress})
		for k, v := range counts {
			total[k] += v
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// ImportFile imports one file and returns the counts of record statuses
// over every run of it (the checkpoint keeps earlier runs' counts).
func (in *Ingester) ImportFile(ctx context.Context, fi FileImport) (map[string]int, error) {
	read, err := reader(fi.Path)
	if err != nil {
		return nil, err
	}
	fp, recordLines, err := scan(fi.Path, read)
	if err != nil {
		return nil, err
	}
	cpPath := fi.Path + ".checkpoint"
	cp := checkpoint{Fingerprint: fp, Counts: map[string]int{}}
	if raw, err := os.ReadFile(cpPath); err == nil {
		var old checkpoint
		if err := json.Unmarshal(raw, &old); err != nil {
			return nil, fmt.Errorf("%s is not a checkpoint (%v); delete it to import from the start", cpPath, err)
		}
		if old.Fingerprint != fp {
			return nil, fmt.Errorf("%s changed since its checkpoint %s was written; delete the checkpoint to import it from the start", fi.Path, cpPath)
		}
		cp = old
		if cp.Counts == nil {
			cp.Counts = map[string]int{}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	skipped := sort.SearchInts(recordLines, cp.Line+1) // records up to the checkpoint
	total := len(recordLines) - skipped
	report, err := openReport(fi.Path+".errors.csv", cp.Report)
	if err != nil {
		return nil, err
	}
	defer report.close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prog := Progress{File: fi.Path, Total: total, Skipped: skipped, Counts: cp.Counts}
	start := time.Now()
	var (
		mu sync.Mutex
		// queue holds the lines sent to the workers in reading order, and
		// done the outcomes of those finished: the checkpoint moves over the
		// head of the queue while it is done, never past a line still in
		// flight, and only then is the line counted and reported, so the
		// counts and the error report cover exactly the lines up to the
		// checkpoint (a resumed import redoes the others).
		queue   []int
		done    = map[int]Outcome{}
		failure error
	)
	finish := func(l Line, o Outcome) {
		mu.Lock()
		defer mu.Unlock()
		if o.Status == Failed {
			if failure == nil {
				failure = fmt.Errorf("%s line %d: %s; the import stopped and resumes after line %d", fi.Path, l.Number, o.Error, cp.Line)
				cancel()
			}
			return
		}
		done[l.Number] = o
		for len(queue) > 0 {
			head, ok := done[queue[0]]
			if !ok {
				break
			}
			cp.Line = queue[0]
			cp.Counts[head.Status]++
			if head.Status == Rejected {
				report.write(cp.Line, head)
			}
			delete(done, queue[0])
			queue = queue[1:]
		}
		prog.Done++
		prog.Checkpoint = cp.Line
		prog.Elapsed = time.Since(start)
		if fi.Progress != nil {
			fi.Progress(prog)
		}
	}
	lines := make(chan Line)
	var wg sync.WaitGroup
	for w := 0; w < max(1, in.Workers); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range lines {
				var o Outcome
				if l.Problems != nil {
					o = Outcome{Status: Rejected, Problems: l.Problems}
				} else {
					o = in.Record(ctx, l.Record)
				}
				finish(l, o)
			}
		}()
	}
	saveEvery := time.NewTicker(time.Second)
	defer saveEvery.Stop()
	f, err := os.Open(fi.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	resumeAfter := cp.Line // cp.Line moves under mu from here on
	readErr := read(f, func(l Line) error {
		if l.Number <= resumeAfter {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		mu.Lock()
		queue = append(queue, l.Number)
		mu.Unlock()
		select {
		case lines <- l:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-saveEvery.C:
			mu.Lock()
			err := save(cpPath, cp, report)
			mu.Unlock()
			return err
		default:
		}
		return nil
	})
	close(lines)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if err := save(cpPath, cp, report); err != nil {
		return cp.Counts, err
	}
	prog.Finished = failure == nil && readErr == nil
	prog.Elapsed = time.Since(start)
	if fi.Progress != nil {
		fi.Progress(prog)
	}
	switch {
	case failure != nil:
		return cp.Counts, failure
	case readErr != nil:
		return cp.Counts, fmt.Errorf("%s: %w", fi.Path, readErr)
	}
	return cp.Counts, nil
}

// scan reads the file once before the import: its fingerprint (size and
// SHA-256), so a checkpoint is never applied to another file, and the line
// numbers of its records, in order, for the progress totals.
func scan(path string, read func(io.Reader, func(Line) error) error) (fingerprint string, lines []int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	h := sha256.New()
	tee := io.TeeReader(f, h)
	if err := read(tee, func(l Line) error { lines = append(lines, l.Number); return nil }); err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := io.Copy(h, f); err != nil { // what the reader left unread
		return "", nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return "", nil, err
	}
	return strconv.FormatInt(st.Size(), 10) + ":" + hex.EncodeToString(h.Sum(nil)), lines, nil
}

// save writes the checkpoint durably, after the error report rows it
// covers.
func save(path string, cp checkpoint, report *errorReport) error {
	size, err := report.sync()
	if err != nil {
		return err
	}
	cp.Report = size
	raw, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(raw); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// errorReport is the CSV of rejected records: line, record, field, reason,
// one row per problem.
type errorReport struct {
	f *os.File
	w *csv.Writer
}

func openReport(path string, keep int64) (*errorReport, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	// Rows after the checkpoint are for lines the import does again.
	if err := f.Truncate(keep); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(keep, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	r := &errorReport{f: f, w: csv.NewWriter(f)}
	if st, err := f.Stat(); err == nil && st.Size() == 0 {
		r.w.Write([]string{"line", "record", "field", "reason"})
	}
	return r, nil
}

func (r *errorReport) write(line int, o Outcome) {
	for _, p := range o.Problems {
		r.w.Write([]string{strconv.Itoa(line), o.Record, p.Field, p.Reason})
	}
	r.w.Flush()
}

// sync makes the rows written so far durable and returns the file's size.
func (r *errorReport) sync() (int64, error) {
	r.w.Flush()
	if err := r.w.Error(); err != nil {
		return 0, err
	}
	if err := r.f.Sync(); err != nil {
		return 0, err
	}
	return r.f.Seek(0, io.SeekCurrent)
}

func (r *errorReport) close() error {
	r.w.Flush()
	return r.f.Close()
}
