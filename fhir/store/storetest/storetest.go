// Package storetest is the one test suite every store.Store engine must pass:
// versioning, history, conditional writes, concurrent updates and
// transaction atomicity, each stated as the FHIR rule it checks.
package storetest

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
)

// Run runs the suite. open returns a fresh, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateReadVersioning", testVersioning},
		{"IfMatch", testIfMatch},
		{"MustExistAndMustNotExist", testExistence},
		{"DeleteIsAVersion", testDelete},
		{"Search", testSearch},
		{"SearchNames", testSearchNames},
		{"MatchTokens", testMatchTokens},
		{"SearchPaging", testSearchPaging},
		{"SearchTotal", testSearchTotal},
		{"SearchAfterWrites", testSearchAfterWrites},
		{"SearchChains", testChains},
		{"Reindex", testReindex},
		{"History", testHistory},
		{"ConcurrentUpdatesLoseNothing", testConcurrentUpdates},
		{"ConcurrentIfMatchOneWins", testConcurrentIfMatch},
		{"ConcurrentCreateSameID", testConcurrentCreate},
		{"TransactionRollsBackAtAnyEntry", testRollback},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func patient(family string) []byte {
	return fmt.Appendf(nil, `{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"%s-nhs"}],"name":[{"family":%q}]}`, family, family)
}

// indexed fills w.Index from w.Body with the real extractor and blind
// indexes, as the server does.
func indexed(w store.Write) store.Write {
	if w.Index == nil {
		w.Index = indexRows(w.Type, w.Body)
	}
	return w
}

func indexRows(typ string, body []byte) []search.Row {
	rows, _ := search.R4().Extract(typ, body)
	rows, err := search.BlindRows(context.Background(), keys, typ, rows)
	if err != nil {
		panic(err) // the suite's own hasher cannot fail
	}
	return rows
}

// keys stands in for the key holder's blind-index HMAC (vault.Keys): the
// suite tests storage, and the key holders have suites of their own.
var keys = func() hmacKey {
	k := make(hmacKey, 32)
	rand.Read(k)
	return k
}()

type hmacKey []byte

func (k hmacKey) HMAC(_ context.Context, inputs [][]byte) ([][]byte, error) {
	out := make([][]byte, len(inputs))
	for i, in := range inputs {
		m := hmac.New(sha256.New, k)
		m.Write(in)
		out[i] = m.Sum(nil)
	}
	return out, nil
}

func put(t *testing.T, s store.Store, w store.Write) *store.Resource {
	t.Helper()
	w = indexed(w)
	var res *store.Resource
	err := s.InTx(context.Background(), func(tx store.Tx) error {
		var err error
		res, _, err = tx.Put(context.Background(), w)
		return err
	})
	if err != nil {
		t.Fatalf("put %s/%s: %v", w.Type, w.ID, err)
	}
	return res
}

func family(t *testing.T, body []byte) string {
	t.Helper()
	var p struct {
		Name []struct{ Family string }
		Meta struct{ VersionID string }
	}
	if err := json.Unmarshal(body, &p); err != nil || len(p.Name) == 0 {
		t.Fatalf("body %s: %v", body, err)
	}
	return p.Name[0].Family
}

func testVersioning(t *testing.T, s store.Store) {
	ctx := context.Background()
	v1 := put(t, s, store.Write{Type: "Patient", ID: "p1", Body: patient("One"), Method: "PUT"})
	v2 := put(t, s, store.Write{Type: "Patient", ID: "p1", Body: patient("Two"), Method: "PUT"})
	if v1.Version != 1 || v2.Version != 2 {
		t.Fatalf("versions = %d, %d; want 1, 2", v1.Version, v2.Version)
	}
	if !v2.LastUpdated.After(v1.LastUpdated) {
		t.Errorf("lastUpdated did not advance: %v then %v", v1.LastUpdated, v2.LastUpdated)
	}
	cur, err := s.Read(ctx, "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != 2 || family(t, cur.Body) != "Two" {
		t.Errorf("read = version %d %s; want version 2 Two", cur.Version, cur.Body)
	}
	var meta struct {
		ID   string
		Meta struct {
			VersionID   string
			LastUpdated string
		}
	}
	_ = json.Unmarshal(cur.Body, &meta)
	if meta.ID != "p1" || meta.Meta.VersionID != "2" || meta.Meta.LastUpdated == "" {
		t.Errorf("stored body does not carry id and meta: %s", cur.Body)
	}
	old, err := s.VRead(ctx, "Patient", "p1", 1)
	if err != nil || family(t, old.Body) != "One" {
		t.Errorf("vread 1 = %v, %v; want One", old, err)
	}
	if _, err := s.VRead(ctx, "Patient", "p1", 3); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("vread 3 err = %v; want ErrNotFound", err)
	}
	if _, err := s.Read(ctx, "Patient", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("read missing err = %v; want ErrNotFound", err)
	}
	// The same id under another type is another resource.
	if _, err := s.Read(ctx, "Observation", "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("read Observation/p1 err = %v; want ErrNotFound", err)
	}
}

func testIfMatch(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, store.Write{Type: "Patient", ID: "p", Body: patient("A"), Method: "PUT"})
	err := s.InTx(ctx, func(tx store.Tx) error {
		_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "p", Body: patient("B"), Method: "PUT", IfMatch: 7})
		return err
	})
	if !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("stale If-Match err = %v; want ErrVersionConflict", err)
	}
	if cur, _ := s.Read(ctx, "Patient", "p"); cur.Version != 1 {
		t.Errorf("a failed If-Match wrote version %d", cur.Version)
	}
	res := put(t, s, store.Write{Type: "Patient", ID: "p", Body: patient("B"), Method: "PUT", IfMatch: 1})
	if res.Version != 2 {
		t.Errorf("matching If-Match gave version %d; want 2", res.Version)
	}
	err = s.InTx(ctx, func(tx store.Tx) error {
		_, err := tx.Delete(ctx, "Patient", "p", "DELETE", 1)
		return err
	})
	if !errors.Is(err, store.ErrVersionConflict) {
		t.Errorf("delete with stale If-Match err = %v; want ErrVersionConflict", err)
	}
}

func testExistence(t *testing.T, s store.Store) {
	ctx := context.Background()
	err := s.InTx(ctx, func(tx store.Tx) error {
		_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "x", Body: patient("X"), Method: "PUT", MustExist: true})
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("MustExist on a missing resource err = %v; want ErrNotFound", err)
	}
	if _, err := s.Read(ctx, "Patient", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failed write left a resource behind: %v", err)
	}
	var created bool
	_ = s.InTx(ctx, func(tx store.Tx) error {
		_, created, err = tx.Put(ctx, store.Write{Type: "Patient", ID: "x", Body: patient("X"), Method: "POST", MustNotExist: true})
		return err
	})
	if err != nil || !created {
		t.Fatalf("create = %v, created %v", err, created)
	}
	err = s.InTx(ctx, func(tx store.Tx) error {
		_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "x", Body: patient("Y"), Method: "POST", MustNotExist: true})
		return err
	})
	if !errors.Is(err, store.ErrExists) {
		t.Errorf("MustNotExist on a live resource err = %v; want ErrExists", err)
	}
	// A server-generated id that collides (NewID skips the lock) still fails
	// rather than overwrite, for live and deleted resources alike.
	_ = s.InTx(ctx, func(tx store.Tx) error { _, err := tx.Delete(ctx, "Patient", "x", "DELETE", 0); return err })
	for _, id := range []string{"x", "never-deleted"} {
		if id == "never-deleted" {
			put(t, s, store.Write{Type: "Patient", ID: id, Body: patient("N"), Method: "PUT"})
		}
		err = s.InTx(ctx, func(tx store.Tx) error {
			_, _, err := tx.Put(ctx, indexed(store.Write{Type: "Patient", ID: id, Body: patient("Y"), Method: "POST", MustNotExist: true, NewID: true}))
			return err
		})
		if !errors.Is(err, store.ErrExists) {
			t.Errorf("NewID colliding with %s: err = %v; want ErrExists", id, err)
		}
	}
	fresh := put(t, s, store.Write{Type: "Patient", ID: "fresh", Body: patient("F"), Method: "POST", MustNotExist: true, NewID: true})
	if fresh.Version != 1 {
		t.Errorf("NewID create made version %d", fresh.Version)
	}
	if got := ids(t, s, "Patient", "identifier=F-nhs"); fmt.Sprint(got) != "[fresh]" {
		t.Errorf("NewID create not indexed: %v", got)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, store.Write{Type: "Patient", ID: "d", Body: patient("D"), Method: "PUT"})
	var del *store.Resource
	err := s.InTx(ctx, func(tx store.Tx) (err error) {
		del, err = tx.Delete(ctx, "Patient", "d", "DELETE", 0)
		return err
	})
	if err != nil || del == nil || del.Version != 2 || !del.Deleted {
		t.Fatalf("delete = %+v, %v; want deleted version 2", del, err)
	}
	cur, err := s.Read(ctx, "Patient", "d")
	if err != nil || !cur.Deleted || cur.Body != nil {
		t.Errorf("read after delete = %+v, %v; want a deleted marker", cur, err)
	}
	err = s.InTx(ctx, func(tx store.Tx) (err error) {
		del, err = tx.Delete(ctx, "Patient", "d", "DELETE", 0)
		return err
	})
	if err != nil || del != nil {
		t.Errorf("second delete = %+v, %v; want nothing to do", del, err)
	}
	if got := ids(t, s, "Patient", "_id=d"); len(got) != 0 {
		t.Errorf("deleted resource still matches: %v", got)
	}
	// Update after delete brings the resource back as a new version.
	var created bool
	_ = s.InTx(ctx, func(tx store.Tx) error {
		res, c, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "d", Body: patient("D2"), Method: "PUT"})
		created = c
		if err == nil && res.Version != 3 {
			t.Errorf("recreate version = %d; want 3", res.Version)
		}
		return err
	})
	if !created {
		t.Errorf("update of a deleted resource should count as a create")
	}
	h, err := s.History(ctx, store.HistoryQuery{Type: "Patient", ID: "d"})
	if err != nil || len(h.Versions) != 3 || !h.Versions[1].Deleted || h.Versions[1].Method != "DELETE" {
		t.Errorf("history after delete = %+v, %v", h, err)
	}
}

// ids runs a search given as a query string and returns the ids found.
func ids(t *testing.T, s store.Store, typ, query string) []string {
	t.Helper()
	params, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	q, err := search.R4().Parse(typ, params, true)
	if err == nil {
		err = q.Blind(context.Background(), keys)
	}
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, query, err)
	}
	q.Count = 100
	res, err := s.Search(context.Background(), q)
	if err != nil {
		t.Fatalf("%s?%s: %v", typ, query, err)
	}
	var out []string
	for _, m := range res.Matches {
		out = append(out, m.ID)
	}
	if res.Total != len(out) {
		t.Errorf("%s?%s: total %d but %d matches", typ, query, res.Total, len(out))
	}
	return out
}

// searchCase is a query and the ids it must find, in order.
type searchCase struct {
	typ, query string
	want       []string
}

func runSearches(t *testing.T, s store.Store, tests []searchCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.typ+"?"+tc.query, func(t *testing.T) {
			got := ids(t, s, tc.typ, tc.query)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
}

// testSearch checks each parameter type and modifier against the store
// (R4 3.1.1.4, 3.1.1.5).
func testSearch(t *testing.T, s store.Store) {
	put(t, s, store.Write{Type: "Patient", ID: "a", Method: "PUT", Body: []byte(`{"resourceType":"Patient","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9000000009"}],"name":[{"family":"Brontë","given":["Anne"]}],"gender":"female","birthDate":"1950-02-14","deceasedDateTime":"1950-02-14","active":true,"generalPractitioner":[{"reference":"Practitioner/gp1"}],"telecom":[{"system":"email","value":"anne@example.org"}]}`)})
	put(t, s, store.Write{Type: "Patient", ID: "b", Method: "PUT", Body: []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:other","value":"9000000009"}],"name":[{"family":"Smith","given":["Bob"]}],"gender":"male","birthDate":"1961","deceasedDateTime":"1961","generalPractitioner":[{"reference":"Practitioner/gp2"}]}`)})
	put(t, s, store.Write{Type: "Patient", ID: "c", Method: "PUT", Body: []byte(`{"resourceType":"Patient","identifier":[{"value":"local-1"},{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},"system":"urn:mrn","value":"mrn-7"}],"name":[{"family":"Smithson","given":["Cat"]}],"gender":"female"}`)})
	put(t, s, store.Write{Type: "Patient", ID: "d", Method: "PUT", Body: []byte(`{"resourceType":"Patient","name":[{"family":"Featherstonehaugh-Wainwright"}]}`)})
	for id, family := range map[string]string{"pb": "Smith", "pc": "Smithson"} {
		put(t, s, store.Write{Type: "Practitioner", ID: id, Method: "PUT", Body: fmt.Appendf(nil, `{"resourceType":"Practitioner","name":[{"family":%q}]}`, family)})
	}
	put(t, s, store.Write{Type: "Observation", ID: "o1", Method: "PUT", Body: []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"273335000","display":"Oxford hip score"}]},"subject":{"reference":"Patient/a"},"effectiveDateTime":"2026-11-01T10:00:00Z","valueQuantity":{"value":42,"system":"http://unitsofmeasure.org","code":"{score}"}}`)})
	put(t, s, store.Write{Type: "Observation", ID: "o2", Method: "PUT", Body: []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"273335000"}]},"subject":{"reference":"Patient/b"},"effectivePeriod":{"start":"2025-01-01","end":"2025-06-30"},"valueQuantity":{"value":17.5,"system":"http://unitsofmeasure.org","code":"{score}"}}`)})
	tests := []searchCase{
		{"Patient", "_id=a,c", []string{"a", "c"}},
		{"Patient", "family=smith", []string{"b", "c"}},
		{"Patient", "family=BRONTE", []string{"a"}},
		{"Patient", "family:exact=Smith", []string{"b"}},
		{"Practitioner", "family:contains=mith", []string{"pb", "pc"}},
		{"Practitioner", "family=smith", []string{"pb", "pc"}},
		// Blind indexes (search.BlindRows): prefixes up to 16 characters,
		// longer search strings equal to the whole value, exact values.
		{"Patient", "family=smithson", []string{"c"}},
		{"Patient", "family=smiths", []string{"c"}},
		{"Patient", "family=featherstoneh", []string{"d"}},
		{"Patient", "family=featherstonehaugh-wainwright", []string{"d"}},
		{"Patient", "family=featherstonehaugh-w", nil},
		{"Patient", "family:exact=smith", nil},
		{"Patient", "family:exact=Featherstonehaugh-Wainwright", []string{"d"}},
		{"Patient", "family:missing=true", nil},
		{"Patient", "birthdate=1950-02", []string{"a"}},
		{"Patient", "birthdate=1950-03", nil},
		{"Patient", "birthdate=1961-01", nil},
		{"Patient", "birthdate=1961", []string{"b"}},
		{"Patient", "birthdate=1950-02-14T00:00:00Z", nil},
		{"Patient", "identifier:not=9000000009", []string{"c", "d"}},
		{"Patient", "telecom=anne@example.org", []string{"a"}},
		{"Patient", "email=bob@example.org", nil},
		{"Observation", "subject:Patient.family=bront", []string{"o1"}},
		{"Observation", "subject:Patient.birthdate=1961", []string{"o2"}},
		{"Patient", "_has:Observation:subject:value-quantity=42", []string{"a"}},
		{"Patient", "name=cat", []string{"c"}},
		{"Patient", "family=smith&given=bob", []string{"b"}},
		{"Patient", "identifier=9000000009", []string{"a", "b"}},
		{"Patient", "identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009", []string{"a"}},
		{"Patient", "identifier=|local-1", []string{"c"}},
		{"Patient", "identifier=urn:other|", []string{"b"}},
		{"Patient", "gender=female", []string{"a", "c"}},
		{"Patient", "gender:not=female", []string{"b", "d"}},
		{"Patient", "active:missing=true", []string{"b", "c", "d"}},
		{"Patient", "birthdate=1950", []string{"a"}},
		{"Patient", "birthdate=1950-02-14", []string{"a"}},
		{"Patient", "death-date=ge1960", []string{"b"}},
		{"Patient", "death-date=lt1961-06-01", []string{"a", "b"}},
		{"Patient", "death-date=eb1961", []string{"a"}},
		{"Patient", "death-date=sa1950-02-14", []string{"b"}},
		{"Patient", "birthdate:missing=true", []string{"c", "d"}},
		{"Patient", "general-practitioner=Practitioner/gp1", []string{"a"}},
		{"Patient", "general-practitioner=gp2", []string{"b"}},
		{"Patient", "email=anne@example.org", []string{"a"}},
		{"Patient", "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|mrn-7", []string{"c"}},
		{"Patient", "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|9000000009", nil},
		{"Observation", "subject=Patient/a", []string{"o1"}},
		{"Observation", "patient=b", []string{"o2"}},
		// _lastUpdated reads the version row, alone and beside a driver.
		{"Observation", "_lastUpdated=gt2000", []string{"o1", "o2"}},
		{"Observation", "subject=Patient/a&_lastUpdated=gt2000", []string{"o1"}},
		{"Observation", "subject=Patient/a&_lastUpdated=lt2000", nil},
		{"Observation", "code=http://snomed.info/sct|273335000", []string{"o1", "o2"}},
		{"Observation", "code:text=oxford", []string{"o1"}},
		{"Observation", "date=2026-11", []string{"o1"}},
		{"Observation", "date=2025-03", nil}, // the period covers more than March
		{"Observation", "date=ge2025-03-01", []string{"o1", "o2"}},
		{"Observation", "date=gt2026-01-01", []string{"o1"}},
		{"Observation", "value-quantity=42", []string{"o1"}},
		{"Observation", "value-quantity=gt20", []string{"o1"}},
		{"Observation", "value-quantity=lt20|http://unitsofmeasure.org|{score}", []string{"o2"}},
		{"Observation", "value-quantity=17.5||{score}", []string{"o2"}},
		{"Observation", "value-quantity=ap40", []string{"o1"}},
		{"Observation", "code=http://snomed.info/sct|273335000&subject=Patient/a,Patient/b&date=2026", []string{"o1"}},
	}
	runSearches(t, s, tests)
	// An update replaces the index; a delete removes it.
	put(t, s, store.Write{Type: "Patient", ID: "b", Method: "PUT", Body: []byte(`{"resourceType":"Patient","name":[{"family":"Jones"}]}`)})
	if got := ids(t, s, "Patient", "family=smith"); fmt.Sprint(got) != "[c]" {
		t.Errorf("after update family=smith = %v; want [c]", got)
	}
}

// testSearchNames checks Patient name searches, which match the name
// parts stored once under family and given (search.nameParts) as well as
// the parts only name holds (text, prefix, suffix), in every clause form
// that reaches the index: top level, driving, chained, reverse-chained.
func testSearchNames(t *testing.T, s store.Store) {
	put(t, s, store.Write{Type: "Patient", ID: "a", Method: "PUT", Body: []byte(`{"resourceType":"Patient","name":[{"family":"Brontë","given":["Anne","Acton"],"prefix":["Miss"]}]}`)})
	put(t, s, store.Write{Type: "Patient", ID: "b", Method: "PUT", Body: []byte(`{"resourceType":"Patient","name":[{"text":"Dr Emily Carr","given":["Emily"]}]}`)})
	put(t, s, store.Write{Type: "Patient", ID: "c", Method: "PUT", Body: []byte(`{"resourceType":"Patient","name":[{"family":"Emerson","suffix":["OBE"]}]}`)})
	put(t, s, store.Write{Type: "Patient", ID: "d", Method: "PUT", Body: []byte(`{"resourceType":"Patient","gender":"male"}`)})
	put(t, s, store.Write{Type: "Patient", ID: "e", Method: "PUT", Body: []byte(`{"resourceType":"Patient","gender":"male","name":[{"family":"Zola"}]}`)})
	put(t, s, store.Write{Type: "Observation", ID: "o1", Method: "PUT", Body: []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/a"}}`)})
	put(t, s, store.Write{Type: "Observation", ID: "o2", Method: "PUT", Body: []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/b"}}`)})
	tests := []searchCase{
		{"Patient", "name=bronte", []string{"a"}},   // family
		{"Patient", "name=act", []string{"a"}},      // second given
		{"Patient", "name=miss", []string{"a"}},     // prefix
		{"Patient", "name=dr emily", []string{"b"}}, // text
		{"Patient", "name=emily", []string{"b"}},    // given (also in text, which does not start with it)
		{"Patient", "name=em", []string{"b", "c"}},  // given of one, family of the other
		{"Patient", "name=obe", []string{"c"}},      // suffix
		{"Patient", "name=carr", nil},               // inside the text only
		{"Patient", "name=anne,obe", []string{"a", "c"}},
		{"Patient", "name=anne&name=bron", []string{"a"}},
		{"Patient", "name=anne&name=emerson", nil},
		{"Patient", "name:exact=Brontë", []string{"a"}},
		{"Patient", "name:exact=bronte", nil},
		{"Patient", "name:exact=Dr Emily Carr", []string{"b"}},
		{"Patient", "name:exact=Emily", []string{"b"}},
		{"Patient", "name:missing=true", []string{"d"}},
		{"Patient", "name:missing=false", []string{"a", "b", "c", "e"}},
		{"Patient", "name:missing=false&gender=male", []string{"e"}},
		{"Patient", "name=em&gender:missing=true", []string{"b", "c"}},
		{"Patient", "family=emily", nil},
		{"Patient", "name=zola", []string{"e"}},
		{"Patient", "given=emerson", nil},
		{"Observation", "subject:Patient.name=acton", []string{"o1"}},
		{"Observation", "subject:Patient.name=dr", []string{"o2"}},
		{"Observation", "subject:Patient.name:missing=false", []string{"o1", "o2"}},
		{"Patient", "_has:Observation:subject:status=final&name=emily", []string{"b"}},
	}
	runSearches(t, s, tests)
}

// Keyset paging returns every match exactly once, in order, even when
// resources are added between pages.
func testSearchPaging(t *testing.T, s store.Store) {
	for i := 0; i < 7; i++ {
		put(t, s, store.Write{Type: "Patient", ID: fmt.Sprintf("p%d", i), Method: "PUT",
			Body: fmt.Appendf(nil, `{"resourceType":"Patient","deceasedDateTime":"19%02d"}`, 50+i%4)})
	}
	for _, sortSpec := range []string{"", "death-date", "-death-date", "_id", "-_lastUpdated"} {
		t.Run("sort="+sortSpec, func(t *testing.T) {
			params := url.Values{}
			if sortSpec != "" {
				params.Set("_sort", sortSpec)
			}
			q, err := search.R4().Parse("Patient", params, true)
			if err != nil {
				t.Fatal(err)
			}
			q.Count = 3
			var got []string
			for page := 0; ; page++ {
				res, err := s.Search(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range res.Matches {
					got = append(got, m.ID)
				}
				if page == 0 {
					// A new resource sorting first must not shift later pages.
					put(t, s, store.Write{Type: "Patient", ID: "a-new" + strings.NewReplacer("-", "", "_", "").Replace(sortSpec), Method: "PUT", Body: []byte(`{"resourceType":"Patient","deceasedDateTime":"1900"}`)})
				}
				if res.Next == nil {
					break
				}
				if page > 10 {
					t.Fatal("paging does not end")
				}
				q.Cursor = res.Next
			}
			seen := map[string]int{}
			for _, id := range got {
				seen[id]++
			}
			for i := 0; i < 7; i++ {
				if id := fmt.Sprintf("p%d", i); seen[id] != 1 {
					t.Errorf("%s seen %d times in %v", id, seen[id], got)
				}
			}
		})
	}
}

// testSearchAfterWrites checks that a search driven by a reference finds
// current, live versions only, on the page and in Bundle.total: a resource
// updated to another subject and a deleted one are not found by their old
// subject.
func testSearchAfterWrites(t *testing.T, s store.Store) {
	obs := func(subject string) []byte {
		return fmt.Appendf(nil, `{"resourceType":"Observation","status":"final","code":{"text":"OHS"},"subject":{"reference":"Patient/%s"}}`, subject)
	}
	for _, id := range []string{"w1", "w2", "w3", "w4"} {
		put(t, s, store.Write{Type: "Observation", ID: id, Method: "PUT", Body: obs("dz")})
	}
	put(t, s, store.Write{Type: "Observation", ID: "w1", Method: "PUT", Body: obs("other")})
	if err := s.InTx(context.Background(), func(tx store.Tx) error {
		_, err := tx.Delete(context.Background(), "Observation", "w2", "DELETE", 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query string
		count int
		want  []string
	}{
		{"subject=Patient/dz", 10, []string{"w3", "w4"}},
		{"subject=Patient/dz", 1, []string{"w3", "w4"}}, // Bundle.total by COUNT
		{"subject=Patient/dz&status=final", 1, []string{"w3", "w4"}},
		{"subject=Patient/other", 10, []string{"w1"}},
	} {
		t.Run(fmt.Sprintf("%s_count=%d", tc.query, tc.count), func(t *testing.T) {
			params, _ := url.ParseQuery(tc.query)
			q, err := search.R4().Parse("Observation", params, true)
			if err != nil {
				t.Fatal(err)
			}
			q.Count, q.Total = tc.count, "accurate"
			var got []string
			total := -1
			for page := 0; page < 10; page++ {
				res, err := s.Search(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				if page == 0 {
					total = res.Total
				}
				for _, m := range res.Matches {
					got = append(got, m.ID)
				}
				if res.Next == nil {
					break
				}
				q.Cursor = res.Next
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || total != len(tc.want) {
				t.Errorf("found %v, total %d; want %v, total %d", got, total, tc.want, len(tc.want))
			}
		})
	}
}

// testSearchTotal checks Bundle.total on first and later pages, whether
// the page holds every match or not, and with _total=none.
func testSearchTotal(t *testing.T, s store.Store) {
	for i := 0; i < 7; i++ {
		put(t, s, store.Write{Type: "Patient", ID: fmt.Sprintf("t%d", i), Method: "PUT", Body: patient(fmt.Sprintf("Total%d", i%2))})
	}
	tests := []struct {
		query      string
		count      int
		total      string
		later      bool // the page after the first
		want, page int
	}{
		{"family=total", 3, "", false, 7, 3},
		{"family=total", 3, "", true, 7, 3},
		{"family=total", 6, "", true, 7, 1},
		{"family=total", 7, "", false, 7, 7},
		{"family=total", 8, "", false, 7, 7},
		{"family=total1", 100, "", false, 3, 3},
		{"family=total", 0, "", false, 7, 0},
		{"family=nobody", 10, "", false, 0, 0},
		{"family=total", 3, "none", false, -1, 3},
		{"family=total", 100, "none", false, -1, 7},
		{"family=total", 3, "accurate", true, 7, 3},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%s_count=%d_total=%s_later=%v", tc.query, tc.count, tc.total, tc.later)
		t.Run(name, func(t *testing.T) {
			params, _ := url.ParseQuery(tc.query)
			q, err := search.R4().Parse("Patient", params, true)
			if err == nil {
				err = q.Blind(context.Background(), keys)
			}
			if err != nil {
				t.Fatal(err)
			}
			q.Count, q.Total = tc.count, tc.total
			res, err := s.Search(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if tc.later {
				if res.Next == nil {
					t.Fatal("no next page")
				}
				q.Cursor = res.Next
				if res, err = s.Search(context.Background(), q); err != nil {
					t.Fatal(err)
				}
			}
			if res.Total != tc.want || len(res.Matches) != tc.page {
				t.Errorf("total %d with %d on the page; want %d with %d", res.Total, len(res.Matches), tc.want, tc.page)
			}
		})
	}
}

func testHistory(t *testing.T, s store.Store) {
	ctx := context.Background()
	var times []time.Time
	for i := 0; i < 5; i++ {
		r := put(t, s, store.Write{Type: "Patient", ID: "h", Body: patient(fmt.Sprint("V", i+1)), Method: "PUT"})
		times = append(times, r.LastUpdated)
	}
	put(t, s, store.Write{Type: "Observation", ID: "o", Body: []byte(`{"resourceType":"Observation","status":"final","code":{"text":"x"}}`), Method: "PUT"})

	var versions []int64
	cursor := int64(0)
	for pages := 0; ; pages++ {
		p, err := s.History(ctx, store.HistoryQuery{Type: "Patient", ID: "h", Count: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != 5 {
			t.Errorf("total = %d; want 5", p.Total)
		}
		for _, v := range p.Versions {
			versions = append(versions, v.Version)
		}
		if p.Next == 0 {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		cursor = p.Next
	}
	if fmt.Sprint(versions) != "[5 4 3 2 1]" {
		t.Errorf("paged versions = %v; want newest first [5 4 3 2 1]", versions)
	}
	since, _ := s.History(ctx, store.HistoryQuery{Type: "Patient", Since: times[3]})
	if len(since.Versions) != 2 {
		t.Errorf("_since 4th version: %d versions; want 2", len(since.Versions))
	}
	// _at the instant of version 3 (and shortly after): version 3 was current.
	at, _ := s.History(ctx, store.HistoryQuery{Type: "Patient", ID: "h", AtStart: times[2], AtEnd: times[2].Add(time.Microsecond)})
	if len(at.Versions) != 1 || at.Versions[0].Version != 3 {
		t.Errorf("_at version 3 = %+v; want exactly version 3", at.Versions)
	}
	sys, _ := s.History(ctx, store.HistoryQuery{})
	if sys.Total != 6 || sys.Versions[0].Type != "Observation" {
		t.Errorf("system history: total %d, first %v; want 6 starting with the Observation", sys.Total, sys.Versions[0].Type)
	}
	typ, _ := s.History(ctx, store.HistoryQuery{Type: "Observation"})
	if typ.Total != 1 {
		t.Errorf("type history total = %d; want 1", typ.Total)
	}
}

// R4 3.1.0.5: servers must not lose updates; unconditional concurrent updates
// are applied one after another, each making a new version.
func testConcurrentUpdates(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, store.Write{Type: "Patient", ID: "c", Body: patient("C0"), Method: "PUT"})
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- s.InTx(ctx, func(tx store.Tx) error {
				_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "c", Body: patient(fmt.Sprint("C", i+1)), Method: "PUT"})
				return err
			})
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent update: %v", err)
		}
	}
	h, err := s.History(ctx, store.HistoryQuery{Type: "Patient", ID: "c", Count: 100})
	if err != nil {
		t.Fatal(err)
	}
	if h.Total != n+1 {
		t.Errorf("history has %d versions; want %d", h.Total, n+1)
	}
	seen := map[string]bool{}
	for i, v := range h.Versions {
		if v.Version != int64(n+1-i) {
			t.Errorf("history position %d has version %d; want %d", i, v.Version, n+1-i)
		}
		seen[family(t, v.Body)] = true
	}
	if len(seen) != n+1 {
		t.Errorf("%d distinct bodies in history; want %d (an update was lost)", len(seen), n+1)
	}
}

// With If-Match, of several clients updating the same version exactly one
// wins and the others get a version conflict (412).
func testConcurrentIfMatch(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, store.Write{Type: "Patient", ID: "m", Body: patient("M0"), Method: "PUT"})
	const n = 8
	var wins, conflicts atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			err := s.InTx(ctx, func(tx store.Tx) error {
				_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "m", Body: patient(fmt.Sprint("M", i)), Method: "PUT", IfMatch: 1})
				return err
			})
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, store.ErrVersionConflict):
				conflicts.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}(i)
	}
	wg.Wait()
	if wins.Load() != 1 || conflicts.Load() != n-1 {
		t.Errorf("wins %d, conflicts %d; want 1 and %d", wins.Load(), conflicts.Load(), n-1)
	}
	if cur, _ := s.Read(ctx, "Patient", "m"); cur.Version != 2 {
		t.Errorf("current version %d; want 2", cur.Version)
	}
}

// Two creates of the same new id: one creates, the other fails as existing.
func testConcurrentCreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 8
	var created, exists atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.InTx(ctx, func(tx store.Tx) error {
				_, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: "new", Body: patient("N"), Method: "POST", MustNotExist: true})
				return err
			})
			switch {
			case err == nil:
				created.Add(1)
			case errors.Is(err, store.ErrExists):
				exists.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if created.Load() != 1 || exists.Load() != n-1 {
		t.Errorf("created %d, exists %d; want 1 and %d", created.Load(), exists.Load(), n-1)
	}
}

// R4 3.1.0.11.2: a transaction succeeds or fails as a whole. Fail at each
// position in turn and check nothing of it is visible.
func testRollback(t *testing.T, s store.Store) {
	ctx := context.Background()
	put(t, s, store.Write{Type: "Patient", ID: "keep", Body: patient("Keep"), Method: "PUT"})
	const entries = 4
	boom := errors.New("entry failed")
	for failAt := 0; failAt < entries; failAt++ {
		err := s.InTx(ctx, func(tx store.Tx) error {
			for i := 0; i < entries; i++ {
				if i == failAt {
					return boom
				}
				switch i % 2 {
				case 0:
					if _, _, err := tx.Put(ctx, store.Write{Type: "Patient", ID: fmt.Sprint("t", failAt, "-", i), Body: patient("T"), Method: "POST", MustNotExist: true}); err != nil {
						return err
					}
				case 1:
					if _, err := tx.Delete(ctx, "Patient", "keep", "DELETE", 0); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("failAt %d: err = %v", failAt, err)
		}
		for i := 0; i < failAt; i++ {
			if _, err := s.Read(ctx, "Patient", fmt.Sprint("t", failAt, "-", i)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("failAt %d: entry %d survived the rollback (%v)", failAt, i, err)
			}
		}
		cur, err := s.Read(ctx, "Patient", "keep")
		if err != nil || cur.Deleted || cur.Version != 1 {
			t.Errorf("failAt %d: rolled-back delete is visible: %+v %v", failAt, cur, err)
		}
	}
	h, _ := s.History(ctx, store.HistoryQuery{})
	if h.Total != 1 {
		t.Errorf("history holds %d versions after rolled-back transactions; want 1", h.Total)
	}
}

// testChains checks chained parameters and _has (R4 3.1.1.4.8-9).
func testChains(t *testing.T, s store.Store) {
	put(t, s, store.Write{Type: "Organization", ID: "leeds", Method: "PUT", Body: []byte(`{"resourceType":"Organization","name":"Leeds Teaching Hospitals"}`)})
	put(t, s, store.Write{Type: "Organization", ID: "york", Method: "PUT", Body: []byte(`{"resourceType":"Organization","name":"York Hospital"}`)})
	put(t, s, store.Write{Type: "Patient", ID: "a", Method: "PUT", Body: []byte(`{"resourceType":"Patient","name":[{"family":"Ashworth"}],"managingOrganization":{"reference":"Organization/leeds"}}`)})
	put(t, s, store.Write{Type: "Patient", ID: "b", Method: "PUT", Body: []byte(`{"resourceType":"Patient","name":[{"family":"Brown"}],"managingOrganization":{"reference":"Organization/york"}}`)})
	put(t, s, store.Write{Type: "Observation", ID: "o1", Method: "PUT", Body: []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"273335000"}]},"subject":{"reference":"Patient/a"}}`)})
	put(t, s, store.Write{Type: "Observation", ID: "o2", Method: "PUT", Body: []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"1234"}]},"subject":{"reference":"Patient/b"}}`)})
	tests := []searchCase{
		{"Observation", "subject:Patient.family=ash", []string{"o1"}},
		{"Observation", "subject.family=brown", []string{"o2"}},
		{"Observation", "patient.organization.name=york", []string{"o2"}},
		{"Observation", "subject:Patient.organization:Organization.name=leeds", []string{"o1"}},
		{"Patient", "_has:Observation:subject:code=273335000", []string{"a"}},
		{"Patient", "_has:Observation:patient:code=1234", []string{"b"}},
		{"Organization", "_has:Patient:organization:_has:Observation:subject:code=1234", []string{"york"}},
		{"Patient", "_has:Observation:subject:code=999", nil},
	}
	put(t, s, store.Write{Type: "Observation", ID: "bp", Method: "PUT", Body: []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"subject":{"reference":"Patient/zz"},
		"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":128,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
		{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":82,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`)})
	put(t, s, store.Write{Type: "Observation", ID: "ohs", Method: "PUT", Body: []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"273335000"}]},"subject":{"reference":"Patient/zz"},"valueQuantity":{"value":42,"system":"http://unitsofmeasure.org","code":"{score}"},"effectiveDateTime":"2026-11-01"}`)})
	tests = append(tests, []searchCase{
		{"Observation", "component-code-value-quantity=http://loinc.org|8480-6$gt120", []string{"bp"}},
		{"Observation", "component-code-value-quantity=http://loinc.org|8480-6$lt120", nil},
		{"Observation", "component-code-value-quantity=http://loinc.org|8462-4$82|http://unitsofmeasure.org|mm[Hg]", []string{"bp"}},
		{"Observation", "component-code-value-quantity=http://loinc.org|8462-4$128", nil}, // the values of different components do not mix
		{"Observation", "code-value-quantity=http://snomed.info/sct|273335000$ge40", []string{"ohs"}},
		{"Observation", "code-value-quantity=273335000$lt40", nil},
		{"Observation", "combo-code-value-quantity=http://loinc.org|8480-6$128", []string{"bp"}},
		// The combo-* parameters read their parts' rows (search.IndexParams).
		{"Observation", "combo-code-value-quantity=http://snomed.info/sct|273335000$42", []string{"ohs"}},
		{"Observation", "combo-code=http://loinc.org|8480-6", []string{"bp"}},
		{"Observation", "combo-code=http://snomed.info/sct|273335000", []string{"o1", "ohs"}},
		{"Observation", "combo-code:not=http://snomed.info/sct|273335000", []string{"bp", "o2"}},
		{"Observation", "combo-value-quantity=gt100", []string{"bp"}},
		{"Observation", "combo-value-quantity=42", []string{"ohs"}},
		{"Observation", "combo-value-quantity:missing=true", []string{"o1", "o2"}},
		{"Patient", "_has:Observation:subject:combo-code=273335000", []string{"a"}},
		{"Observation", "combo-code=http://loinc.org|85354-9,http://snomed.info/sct|1234&_sort=combo-code", []string{"o2", "bp"}},
		{"Observation", "combo-code=http://loinc.org|85354-9,http://snomed.info/sct|1234&_sort=-combo-code", []string{"bp", "o2"}},
	}...)
	runSearches(t, s, tests)
}

// Reindex rebuilds the index of resources written without one.
func testReindex(t *testing.T, s store.Store) {
	for i := 0; i < 450; i++ {
		put(t, s, store.Write{Type: "Patient", ID: fmt.Sprintf("r%03d", i), Method: "PUT", Index: []search.Row{},
			Body: fmt.Appendf(nil, `{"resourceType":"Patient","name":[{"family":"Reindexed%d"}]}`, i)})
	}
	if got := ids(t, s, "Patient", "family=reindexed449"); len(got) != 0 {
		t.Fatalf("found %v before reindexing", got)
	}
	var calls []int
	err := s.Reindex(context.Background(), func(_ context.Context, typ string, body []byte) ([]search.Row, error) {
		return indexRows(typ, body), nil
	}, func(done, total int) {
		if total != 450 {
			t.Errorf("total %d; want 450", total)
		}
		calls = append(calls, done)
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(calls) != "[200 400 450]" {
		t.Errorf("progress %v", calls)
	}
	if got := ids(t, s, "Patient", "family=reindexed449"); fmt.Sprint(got) != "[r449]" {
		t.Errorf("after reindex: %v", got)
	}
}

// MatchTokens answers each criterion as a search for system|code would:
// exact system and code, live resources of the type only.
func testMatchTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	obs := func(id, value string) []byte {
		return fmt.Appendf(nil, `{"resourceType":"Observation","id":%q,"identifier":[{"system":"urn:s","value":%q}],"status":"final","code":{"text":"x"}}`, id, value)
	}
	put(t, s, store.Write{Type: "Observation", ID: "o1", Body: obs("o1", "a"), Method: "PUT"})
	put(t, s, store.Write{Type: "Observation", ID: "o2", Body: obs("o2", "b"), Method: "PUT"})
	put(t, s, store.Write{Type: "Observation", ID: "o3", Body: obs("o3", "b"), Method: "PUT"})
	put(t, s, store.Write{Type: "Observation", ID: "gone", Body: obs("gone", "c"), Method: "PUT"})
	if err := s.InTx(ctx, func(tx store.Tx) error { _, err := tx.Delete(ctx, "Observation", "gone", "DELETE", 0); return err }); err != nil {
		t.Fatal(err)
	}
	criteria := []store.TokenMatch{
		{Type: "Observation", Param: "identifier", System: "urn:s", Code: "a"},
		{Type: "Observation", Param: "identifier", System: "urn:s", Code: "b"},
		{Type: "Observation", Param: "identifier", System: "urn:other", Code: "a"},
		{Type: "Observation", Param: "identifier", System: "urn:s", Code: "c"},
		{Type: "Patient", Param: "identifier", System: "urn:s", Code: "a"},
	}
	want := [][]string{{"o1"}, {"o2", "o3"}, nil, nil, nil}
	var got [][]string
	err := s.InTx(ctx, func(tx store.Tx) (err error) {
		if err := tx.LockCriteria(ctx, "Observation?identifier=urn:s|a", "Observation?identifier=urn:s|b", "Observation?identifier=urn:s|a"); err != nil {
			return err
		}
		got, err = tx.MatchTokens(ctx, criteria)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Errorf("criterion %+v: %v; want %v", criteria[i], got[i], want[i])
		}
	}
}
