package rotation_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/promsgateway/gateway/fhir/store"
	"github.com/promsgateway/gateway/fhir/store/sqlstore"
	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/hcvault"
	"github.com/promsgateway/gateway/vault/rotation"
	"github.com/promsgateway/gateway/vault/vaulttest"
)

// queued records the jobs a worker enqueues instead of running them.
type queued struct{ jobs []*river.InsertOpts }

func (q *queued) Insert(_ context.Context, _ river.JobArgs, opts *river.InsertOpts) error {
	q.jobs = append(q.jobs, opts)
	return nil
}

// A rewrap interrupted after any batch resumes where it stopped, with a
// new worker (another process), and ends with the old version retired.
func TestRewrapResumes(t *testing.T) {
	v := vaulttest.Start(t)
	ctx := context.Background()
	keys, err := hcvault.Connect(ctx, hcvault.Config{Address: v.Addr, Auth: "token", Token: v.RootToken,
		TransitMount: "transit", DataKey: hcvault.DefaultDataKey, BlindKey: hcvault.DefaultBlindKey, BlindKeyVersion: 1,
		KVMount: "secret", Timeout: 5 * time.Second, MaxRetries: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	// Every write gets a new data key (max age 1ns), so the batches hold
	// many distinct keys.
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "gw.db"), vault.NewEnvelopeMaxAge(keys, time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := 0; i < 45; i++ {
		err := st.InTx(ctx, func(tx store.Tx) error {
			_, _, err := tx.Put(ctx, store.Write{Type: "Basic", ID: fmt.Sprint("b", i), Method: "PUT",
				Body: []byte(`{"resourceType":"Basic","code":{"text":"x"}}`)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	q := &queued{}
	r, err := rotation.Start(ctx, keys, st, st.Rotations, q)
	if err != nil || r.Target != 2 || r.Total != 45 {
		t.Fatalf("start: %+v %v", r, err)
	}
	job := &river.Job[rotation.Args]{JobRow: &rivertype.JobRow{}, Args: rotation.Args{Target: 2}}
	// Each worker does one batch of 10 and hands over, as if the process
	// stopped after every batch.
	for round := 0; ; round++ {
		w := &rotation.Worker{Store: st, Keys: keys, Queue: q, Grace: 0, Slice: 0, Batch: 10, Log: slog.New(slog.DiscardHandler)}
		if err := w.Work(ctx, job); err != nil {
			t.Fatal(err)
		}
		got, _ := st.Rotation(ctx, 2)
		if !got.Finished.IsZero() {
			if got.Rewrapped != 45 {
				t.Errorf("rewrapped %d of 45", got.Rewrapped)
			}
			break
		}
		if round > 20 {
			t.Fatalf("no end: %+v", got)
		}
	}
	if len(q.jobs) < 5 {
		t.Errorf("%d hand-overs; want one per batch", len(q.jobs))
	}
	_, minDec, err := keys.KeyVersions(ctx)
	if err != nil || minDec != 2 {
		t.Errorf("min_decryption_version %d, %v", minDec, err)
	}
	// Everything opens with the retired version gone.
	for i := 0; i < 45; i++ {
		if _, err := st.Read(ctx, "Basic", fmt.Sprint("b", i)); err != nil {
			t.Fatalf("read b%d: %v", i, err)
		}
	}
}
