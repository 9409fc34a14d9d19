package sqlstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promsgateway/gateway/fhir/store"
	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/devkeystore"
)

// Writers that never stop still let the log start again, and every
// resource written is in the database once the store is closed.
func TestCheckpointsRestartTheLogUnderConstantWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gw.db")
	ks, err := devkeystore.Open(filepath.Join(t.TempDir(), "keys.json"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	seal := vault.NewEnvelope(ks)
	s, err := Open(context.Background(), path, seal)
	if err != nil {
		t.Fatal(err)
	}
	s.ckpt.close()
	if s.ckpt, err = startCheckpointer(path, s.writer, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ckpt := s.ckpt
	var (
		stop    atomic.Bool
		written atomic.Int64
		maxWAL  int64
		wg      sync.WaitGroup
	)
	body := []byte(`{"resourceType":"Basic","code":{"text":"x"}}`)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				err := s.InTx(context.Background(), func(tx store.Tx) error {
					for i := 0; i < 20; i++ {
						id := fmt.Sprintf("w%d-%d-%d", w, n, i)
						if _, _, err := tx.Put(context.Background(), store.Write{Type: "Basic", ID: id, NewID: true, Method: "POST", Body: body}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				written.Add(20)
			}
		}()
	}
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > maxWAL {
			maxWAL = fi.Size()
		}
	}
	stop.Store(true)
	wg.Wait()
	db, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	turns, restarts := ckpt.turns.Load(), ckpt.restarts.Load()
	t.Logf("%d resources written; -wal file at most %d bytes, database file %d bytes; %d checkpoints held the writer's turn, the log started again %d times",
		written.Load(), maxWAL, db.Size(), turns, restarts)
	// Without the second checkpoint of each turn the log never started
	// again here (and the -wal file grew to several times the database
	// file).
	if restarts < 3 {
		t.Errorf("the log started again %d times in %d turns of writes that never stopped", restarts, turns)
	}
	// Idle, the checkpointer takes the writer's turn at most once more
	// (for what the last writes left).
	time.Sleep(5 * ckpt.every)
	if n := ckpt.turns.Load(); n > turns+1 {
		t.Errorf("idle, the checkpointer took the writer's turn %d more times", n-turns)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Nothing written is lost to the checkpoints.
	s, err = Open(context.Background(), path, seal)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int64
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM resource_current WHERE type = 'Basic'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != written.Load() {
		t.Errorf("%d resources in the database, %d written", n, written.Load())
	}
}
