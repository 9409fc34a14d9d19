package rest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/fhir/rest"
)

// sourceBundle is one version of a source's transaction: a Patient, the
// resources writes names ("obs-<code>" an Observation, "practitioner" a
// Practitioner), and a Provenance (id prov-<version>) of source rec-1 that
// targets what targets names ("patient" and the names of writes).
func sourceBundle(version string, writes []string, targets ...string) string {
	urn := func(s string) string {
		return "urn:uuid:" + fmt.Sprintf("%08x-0000-4000-8000-000000000000", len(s)*7919+int(s[len(s)-1]))
	}
	var entries []string
	put := func(key, typ, ident, body string) {
		entries = append(entries, fmt.Sprintf(`{"fullUrl":%q,"resource":%s,"request":{"method":"PUT","url":"%s?identifier=urn:test|%s"}}`, urn(key), body, typ, ident))
	}
	put("patient", "Patient", "p1", `{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"p1"}]}`)
	for _, w := range writes {
		if c, ok := strings.CutPrefix(w, "obs-"); ok {
			put(w, "Observation", "o-"+c, fmt.Sprintf(`{"resourceType":"Observation","identifier":[{"system":"urn:test","value":"o-%s"}],"status":"final","code":{"text":%q},"subject":{"reference":%q}}`, c, c, urn("patient")))
		} else {
			put(w, "Practitioner", "dr", `{"resourceType":"Practitioner","identifier":[{"system":"urn:test","value":"dr"}]}`)
		}
	}
	var refs []string
	for _, t := range targets {
		refs = append(refs, fmt.Sprintf(`{"reference":%q}`, urn(t)))
	}
	entries = append(entries, fmt.Sprintf(`{"fullUrl":"urn:uuid:9%07s-0000-4000-8000-000000000000","resource":{"resourceType":"Provenance","id":"prov-%s","target":[%s],"recorded":"2026-01-01T00:00:00Z","agent":[{"who":{"display":"platform"}}],"entity":[{"role":"source","what":{"identifier":{"system":"urn:test:record","value":"rec-1"}}}]},"request":{"method":"PUT","url":"Provenance/prov-%s"}}`,
		version, version, strings.Join(refs, ","), version))
	return `{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`
}

func TestCommitSupersede(t *testing.T) {
	keepPractitioner := func(typ string) bool { return typ == "Practitioner" }
	all := []string{"obs-a", "obs-b", "practitioner"}
	tests := []struct {
		name string
		opts rest.CommitOptions
		// second is the next version of the source; deleted the types it
		// must delete, by count.
		second  string
		deleted map[string]int
	}{
		{"what the source no longer makes is deleted",
			rest.CommitOptions{Supersede: true},
			sourceBundle("2", []string{"obs-a", "practitioner"}, "patient", "obs-a", "practitioner"),
			map[string]int{"Observation": 1}},
		{"what the new version still writes stays, targeted or not",
			rest.CommitOptions{Supersede: true},
			sourceBundle("2", all, "patient", "obs-a"),
			map[string]int{}},
		{"Keep protects shared types",
			rest.CommitOptions{Supersede: true, Keep: keepPractitioner},
			sourceBundle("2", []string{"obs-a", "obs-b"}, "patient", "obs-a", "obs-b"),
			map[string]int{}},
		{"without Keep a shared type goes too",
			rest.CommitOptions{Supersede: true},
			sourceBundle("2", []string{"obs-a", "obs-b"}, "patient", "obs-a", "obs-b"),
			map[string]int{"Practitioner": 1}},
		{"the same version sent again deletes nothing",
			rest.CommitOptions{Supersede: true},
			sourceBundle("1", all, "patient", "obs-a", "obs-b", "practitioner"),
			map[string]int{}},
		{"without Supersede nothing is deleted",
			rest.CommitOptions{},
			sourceBundle("2", []string{"obs-a"}, "patient", "obs-a"),
			map[string]int{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, nil, func(t *testing.T, g *gateway) {
				ctx := context.Background()
				first := sourceBundle("1", all, "patient", "obs-a", "obs-b", "practitioner")
				if _, err := g.srv.Commit(ctx, []byte(first), tc.opts); err != nil {
					t.Fatal(err)
				}
				done, err := g.srv.Commit(ctx, []byte(tc.second), tc.opts)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]int{}
				for _, c := range done {
					if c.Deleted {
						got[c.Type]++
						if r := g.do("GET", "/"+c.Type+"/"+c.ID, ""); r.status != http.StatusGone {
							t.Errorf("%s/%s reported deleted; read gives %d", c.Type, c.ID, r.status)
						}
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.deleted) {
					t.Errorf("deleted %v; want %v", got, tc.deleted)
				}
			})
		})
	}
}
