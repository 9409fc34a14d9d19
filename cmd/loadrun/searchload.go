package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
	"github.com/promsgateway/gateway/fhir/store/sqlstore"
	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/devkeystore"
)

var loincCodes = []string{"8302-2", "29463-7", "8867-4", "8480-6", "72514-3"}

// seedSearch writes generated Patients and Observations straight through
// the store (with their search index), in batches, using every core.
func seedSearch(ctx context.Context, dsn, keystore string, patients, observations int) (time.Duration, error) {
	start := time.Now()
	ks, err := devkeystore.Open(keystore, false, nil)
	if err != nil {
		return 0, err
	}
	st, err := sqlstore.Open(ctx, dsn, vault.NewEnvelope(ks))
	if err != nil {
		return 0, err
	}
	defer st.Close()
	reg := search.R4()
	writes := make(chan store.Write, 2048)
	var gen sync.WaitGroup
	jobs := make(chan int, 4096)
	total := patients + observations
	for w := 0; w < 2; w++ {
		gen.Add(1)
		go func() {
			defer gen.Done()
			for i := range jobs {
				var w store.Write
				if i < patients {
					w = store.Write{Type: "Patient", ID: fmt.Sprintf("bp%06d", i), Method: "POST", NewID: true,
						Body: fmt.Appendf(nil, `{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9%09d"}],"name":[{"family":"Family%d","given":["Given%d"]}],"gender":"%s","birthDate":"19%02d-0%d-1%d"}`,
							i, i%5000, i%700, []string{"male", "female"}[i%2], 30+i%60, 1+i%9, i%10)}
				} else {
					j := i - patients
					when := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(j%(2*365*24*60)) * time.Minute)
					w = store.Write{Type: "Observation", ID: fmt.Sprintf("bo%07d", j), Method: "POST", NewID: true,
						Body: fmt.Appendf(nil, `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"%s"}]},"subject":{"reference":"Patient/bp%06d"},"effectiveDateTime":"%s","valueQuantity":{"value":%d,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}`,
							loincCodes[j%len(loincCodes)], j%patients, when.Format(time.RFC3339), 40+j%80)}
				}
				rows, _ := reg.Extract(w.Type, w.Body)
				index, err := search.BlindRows(ctx, ks, w.Type, rows)
				if err != nil {
					panic(err) // the development keystore's HMAC does not fail
				}
				w.Index = index
				writes <- w
			}
		}()
	}
	go func() {
		for i := 0; i < total; i++ {
			jobs <- i
		}
		close(jobs)
		gen.Wait()
		close(writes)
	}()
	const batch = 500
	done := 0
	for {
		var ws []store.Write
		for w := range writes {
			ws = append(ws, w)
			if len(ws) == batch {
				break
			}
		}
		if len(ws) == 0 {
			break
		}
		err := st.InTx(ctx, func(tx store.Tx) error {
			for _, w := range ws {
				if _, _, err := tx.Put(ctx, w); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		done += len(ws)
		if done%100000 < batch {
			fmt.Fprintf(os.Stderr, "seeded %d of %d resources (%s)\n", done, total, time.Since(start).Round(time.Second))
		}
	}
	// Fresh statistics, as a running database would have them; on
	// PostgreSQL also what autovacuum leaves on a database in use (hint
	// bits set, the visibility map written), instead of the first
	// searches paying for a million rows just written.
	settle := "ANALYZE"
	if st.Engine() == "postgres" {
		settle = "VACUUM (ANALYZE)"
	}
	if _, err := st.DB().ExecContext(ctx, settle); err != nil {
		return 0, fmt.Errorf("%s: %w", settle, err)
	}
	return time.Since(start), nil
}

// searchWarmUp is how long each search scenario runs, unmeasured, before
// its measurements.
const searchWarmUp = 2 * time.Second

// measureSearch seeds an engine and measures the search scenarios over HTTP.
func measureSearch(bin, tmp, engine, dsn string, patients, observations int, dur time.Duration, maxReq int) ([]result, string, error) {
	keystore := filepath.Join(tmp, engine+"-search-keys.json")
	took, err := seedSearch(context.Background(), dsn, keystore, patients, observations)
	if err != nil {
		return nil, "", fmt.Errorf("seed: %w", err)
	}
	note := fmt.Sprintf("%s: seeded %d Patients and %d Observations in %s", engine, patients, observations, took.Round(time.Second))
	out, err := searchScenarios(bin, engine, dsn, keystore, patients, observations, dur, maxReq)
	return out, note, err
}

// searchScenarios measures the search scenarios over HTTP on a database
// already seeded by seedSearch.
func searchScenarios(bin, engine, dsn, keystore string, patients, observations int, dur time.Duration, maxReq int) ([]result, error) {
	base, stop, err := startGateway(bin, dsn, keystore)
	if err != nil {
		return nil, err
	}
	defer stop()
	scenarios := []struct {
		name string
		url  func() string
	}{
		{fmt.Sprintf("Patient?identifier= (of %d)", patients), func() string {
			return fmt.Sprintf("%s/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9%09d", base, rand.IntN(patients))
		}},
		{fmt.Sprintf("Observation?patient&code&date=ge (of %d)", observations), func() string {
			return fmt.Sprintf("%s/Observation?patient=Patient/bp%06d&code=http://loinc.org|%s&date=ge2025-01-01", base, rand.IntN(patients), loincCodes[rand.IntN(len(loincCodes))])
		}},
		{"Observation?patient&_include=Observation:patient", func() string {
			return fmt.Sprintf("%s/Observation?patient=Patient/bp%06d&_include=Observation:patient", base, rand.IntN(patients))
		}},
	}
	var out []result
	for _, sc := range scenarios {
		get := func(k *conn) (int, error) { s, _, err := k.do("GET", sc.url(), nil); return s, err }
		// Unmeasured warm-up: connections opened, statements prepared,
		// pages cached, as on a server that has been serving.
		load(get, 200, 4, searchWarmUp, maxReq)
		for _, c := range []int{1, 32} {
			r := load(get, 200, c, dur, maxReq)
			r.engine, r.scenario, r.concurrency = engine, sc.name, c
			fmt.Fprintf(os.Stderr, "%s %s c=%d: %.0f req/s p50 %v p99 %v errors %d\n", engine, sc.name, c, r.rps, r.p50, r.p99, r.errors)
			out = append(out, r)
		}
	}
	return out, nil
}
