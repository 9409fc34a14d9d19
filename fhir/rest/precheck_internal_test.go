package rest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
	"github.com/promsgateway/gateway/fhir/store/sqlstore"
	"github.com/promsgateway/gateway/vault"
	"github.com/promsgateway/gateway/vault/devkeystore"
)

// The index rows precheck extracts with placeholder ids, once given the
// real ids, are the rows extraction of the stored body gives.
func TestPrecheckedRowsMatchStoredBodies(t *testing.T) {
	ctx := context.Background()
	ks, err := devkeystore.Open(filepath.Join(t.TempDir(), "keys.json"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "gw.db"), vault.NewEnvelope(ks))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := NewServer(DefaultConfig(), st, ks, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	// Reference data the bundles refer to conditionally.
	seed := `{"resourceType":"Bundle","type":"transaction","entry":[
	 {"resource":{"resourceType":"Practitioner","identifier":[{"system":"https://fhir.hl7.org.uk/Id/gmc-number","value":"7012345"}]},"request":{"method":"POST","url":"Practitioner"}},
	 {"resource":{"resourceType":"Organization","identifier":[{"system":"https://fhir.nhs.uk/Id/ods-organization-code","value":"RR8"}],"name":"Leeds"},"request":{"method":"POST","url":"Organization"}}]}`
	if _, err := s.Commit(ctx, []byte(seed), CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	const p1 = "urn:uuid:0d4c7c48-3f0a-4d27-9e51-6b3a3c1fbc01"
	const o1 = "urn:uuid:0d4c7c48-3f0a-4d27-9e51-6b3a3c1fbc02"
	bundles := map[string]string{
		"conditional updates, entry and conditional references": `{"resourceType":"Bundle","type":"transaction","entry":[
		 {"fullUrl":"` + p1 + `","resource":{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9434765919"}],"name":[{"family":"Smith","given":["Ann"]}],"birthDate":"1950-02-01","generalPractitioner":[{"reference":"Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|RR8"}],"managingOrganization":{"reference":"Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|RR8"}},"request":{"method":"PUT","url":"Patient?identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9434765919"}},
		 {"fullUrl":"` + o1 + `","resource":{"resourceType":"Observation","identifier":[{"system":"urn:test","value":"o1"}],"status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"27113001"}]},"subject":{"reference":"` + p1 + `"},"performer":[{"reference":"Practitioner?identifier=https://fhir.hl7.org.uk/Id/gmc-number|7012345"}],"effectiveDateTime":"2026-01-02","valueQuantity":{"value":72,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}},"request":{"method":"PUT","url":"Observation?identifier=urn%3Atest%7Co1"}},
		 {"resource":{"resourceType":"Provenance","target":[{"reference":"` + p1 + `"},{"reference":"` + o1 + `"}],"recorded":"2026-01-02T00:00:00Z","agent":[{"who":{"reference":"Practitioner?identifier=https://fhir.hl7.org.uk/Id/gmc-number|7012345"}}]},"request":{"method":"POST","url":"Provenance"}}]}`,
		"a client id that looks like a placeholder": `{"resourceType":"Bundle","type":"transaction","entry":[
		 {"fullUrl":"` + p1 + `","resource":{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"p2"}],"link":[{"other":{"reference":"Patient/00000000-0000-4000-8000-000000000001"},"type":"seealso"}]},"request":{"method":"PUT","url":"Patient?identifier=urn%3Atest%7Cp2"}},
		 {"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"` + p1 + `"}},"request":{"method":"PUT","url":"Observation?identifier=urn%3Atest%7Co2"}}]}`,
	}
	for name, raw := range bundles {
		t.Run(name, func(t *testing.T) {
			b, err := parseBundle([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			r := &Request{Method: http.MethodPost, Header: http.Header{}}
			pre, err := s.precheck(ctx, r, b)
			if err != nil {
				t.Fatal(err)
			}
			precomputed := 0
			for _, rows := range pre.rows {
				if rows != nil {
					precomputed++
				}
			}
			if precomputed == 0 {
				t.Fatal("precheck indexed nothing")
			}
			reused := 0
			err = st.InTx(ctx, func(tx store.Tx) error {
				plans, err := s.prepareEntries(ctx, tx, r, b, pre)
				if err != nil {
					return err
				}
				for _, p := range plans {
					if p.req.checked == nil {
						continue
					}
					want := []search.Indexed{{Type: p.req.Type, Rows: s.extractRows(p.req.Type, p.req.checked)}}
					if err := search.BlindAll(ctx, ks, want); err != nil {
						return err
					}
					if !reflect.DeepEqual(p.req.index, want[0].Rows) && !(len(p.req.index) == 0 && len(want[0].Rows) == 0) {
						t.Errorf("entry %d (%s): prechecked rows\n%+v\nwant\n%+v", p.index, p.req.Type, p.req.index, want[0].Rows)
					}
					// The body to store, rewritten from precheck's compact
					// body or not, is compact and names the decided ids.
					orig := b.Entry[p.index].Resource
					if compact, err := resource.Compact(p.req.checked); err != nil || !bytes.Equal(compact, p.req.checked) {
						t.Errorf("entry %d: the checked body is not compact JSON (%v): %s", p.index, err, p.req.checked)
					}
					for _, left := range []string{placeholderPrefix, "urn:uuid:", "?identifier="} {
						if bytes.Contains(p.req.checked, []byte(left)) && !bytes.Contains(orig, []byte(placeholderPrefix)) {
							t.Errorf("entry %d: the checked body still holds %q: %s", p.index, left, p.req.checked)
						}
					}
					if pre.compact[p.index] != nil {
						reused++
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if reused == 0 {
				t.Error("no entry's body was rewritten from precheck's compact body")
			}
		})
	}
}
