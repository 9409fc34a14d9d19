package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/promsgateway/gateway/fhir/store"
	"github.com/promsgateway/gateway/fhir/store/sqlstore"
	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/devkeystore"
)

// plain stores bodies as they are: the "encryption off" side of the
// comparison below, never used outside it.
type plain struct{}

func (plain) Seal(_ context.Context, pt, _ []byte) ([]byte, error) { return pt, nil }
func (plain) Open(_ context.Context, ct, _ []byte) ([]byte, error) { return ct, nil }

// BenchmarkReadEncryption reads one resource by id from SQLite with bodies
// sealed by the envelope (AES-256-GCM, cached data key) and with bodies in
// plaintext, to show what encryption at rest costs a read (issue 4: under
// 15%).
func BenchmarkReadEncryption(b *testing.B) {
	ks, err := devkeystore.Open(filepath.Join(b.TempDir(), "keys.json"), false, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		seal sqlstore.Sealer
	}{{"encrypted", vault.NewEnvelope(ks)}, {"plaintext", plain{}}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := sqlstore.Open(ctx, filepath.Join(b.TempDir(), "gw.db"), tc.seal)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			body := fmt.Appendf(nil, `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":172,"unit":"cm"},"note":[{"text":"%0300d"}]}`, 0)
			err = s.InTx(ctx, func(tx store.Tx) error {
				_, _, err := tx.Put(ctx, store.Write{Type: "Observation", ID: "o1", Body: body, Method: "PUT"})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Read(ctx, "Observation", "o1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
