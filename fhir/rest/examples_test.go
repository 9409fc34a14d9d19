package rest_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/fhir/resource"
)

// sharedDir finds ../shared test material; outside CI its absence skips.
func sharedDir(t *testing.T, parts ...string) string {
	t.Helper()
	dir := filepath.Join(append([]string{"..", "..", "..", "shared"}, parts...)...)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("shared test material missing in CI: %v", err)
		}
		t.Skipf("shared test material not present (%v)", err)
	}
	return dir
}

// The official examples that break the specification's own rules, with the
// element and the rule the refusal must name.
var invalidExamples = map[string][]string{
	"bundle-questionnaire.json":       {"Questionnaire.item", "linkId"},
	"devicemetric-example.json":       {"DeviceMetric.parent", "DeviceDefinition"},
	"deviceusestatement-example.json": {"DeviceUseStatement.reasonReference", "Procedure"},
	"medicationrequest0301.json":      {"MedicationRequest.dispenseRequest.performer", "Practitioner"},
}

// Every official R4 example round-trips: created, read back unchanged apart
// from meta.versionId and meta.lastUpdated, updated, found in history and
// deleted. The examples that break the specification are refused with 422.
func TestOfficialExamples(t *testing.T) {
	dir := sharedDir(t, "conformance", "r4-examples")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		for _, f := range files {
			name := filepath.Base(f)
			t.Run(name, func(t *testing.T) {
				raw, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				h, _, err := resource.ReadHeader(raw)
				if err != nil {
					t.Fatal(err)
				}
				if want, bad := invalidExamples[name]; bad {
					r := g.do("POST", "/"+h.Type, string(raw))
					expect(t, r, 422)
					for _, w := range want {
						if !strings.Contains(string(r.body), w) {
							t.Errorf("refusal does not name %q: %.400s", w, r.body)
						}
					}
					return
				}
				path := "/" + h.Type + "/" + h.ID
				var r reply
				if h.ID == "" {
					r = g.do("POST", "/"+h.Type, string(raw))
					path = "/" + h.Type + "/" + r.json(t)["id"].(string)
				} else {
					r = g.do("PUT", path, string(raw))
				}
				expect(t, r, 201)
				read := g.do("GET", path, "")
				expect(t, read, 200)
				sameApartFromMeta(t, raw, read.body, h.ID == "")

				var upd reply
				if h.ID != "" {
					upd = g.do("PUT", path, string(raw))
				} else {
					stamped, _ := resource.Stamp(raw, path[strings.LastIndex(path, "/")+1:], 1, timeZero)
					upd = g.do("PUT", path, string(stamped))
				}
				expect(t, upd, 200)
				// The newest two history entries are this update and the create
				// (an earlier example may have used the same id before).
				hist := g.do("GET", path+"/_history?_count=2", "")
				expect(t, hist, 200)
				es := entries(t, hist)
				if len(es) != 2 || field(es[0], "response", "etag") != upd.header.Get("ETag") ||
					field(es[0], "request", "method") != "PUT" || field(es[1], "response", "etag") != r.header.Get("ETag") {
					t.Errorf("history does not show the create then the update: %.600s", hist.body)
				}
				expect(t, g.do("DELETE", path, ""), 204)
				expect(t, g.do("GET", path, ""), 410)
			})
		}
	})
}

// sameApartFromMeta compares, member by member and byte for byte after
// compaction, the example and what the server returned; meta may differ
// only in versionId and lastUpdated, and id only when the server assigned it.
func sameApartFromMeta(t *testing.T, sent, got []byte, serverID bool) {
	t.Helper()
	a, err := resource.ParseObject(sent)
	if err != nil {
		t.Fatal(err)
	}
	b, err := resource.ParseObject(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range a {
		if m.Key == "meta" || (m.Key == "id" && serverID) {
			continue
		}
		v, ok := b.Get(m.Key)
		want, _ := resource.Compact(m.Value)
		if !ok || !bytes.Equal(want, v) {
			t.Errorf("%s changed:\nsent %.300s\ngot  %.300s", m.Key, want, v)
		}
	}
	for _, m := range b {
		if _, ok := a.Get(m.Key); !ok && m.Key != "meta" && m.Key != "id" {
			t.Errorf("server added %s", m.Key)
		}
	}
	var am, bm map[string]json.RawMessage
	if v, ok := a.Get("meta"); ok {
		_ = json.Unmarshal(v, &am)
	}
	mv, _ := b.Get("meta")
	_ = json.Unmarshal(mv, &bm)
	for k, v := range am {
		if k == "versionId" || k == "lastUpdated" {
			continue
		}
		want, _ := resource.Compact(v)
		if !bytes.Equal(want, bm[k]) {
			t.Errorf("meta.%s changed: sent %s got %s", k, want, bm[k])
		}
	}
}

var timeZero = mustTime("2000-01-01T00:00:00Z")
