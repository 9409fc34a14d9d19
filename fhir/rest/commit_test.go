package rest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/rest"
)

// version is one version of a source's transaction: a Patient, the
// resources writes names ("obs-<code>" an Observation, "practitioner" a
// Practitioner), and a Provenance (id prov-<id>) that targets what targets
// names ("patient" and the names of writes), recorded at recorded, with an
// entity of role (default source) naming the source record and the agent
// agent (default the platform).
type version struct {
	id, source, recorded, role, agent string
	writes, targets                   []string
}

func (v version) bundle() string {
	urn := func(s string) string {
		return "urn:uuid:" + fmt.Sprintf("%08x-0000-4000-8000-000000000000", len(s)*7919+int(s[len(s)-1]))
	}
	var entries []string
	put := func(key, typ, ident, body string) {
		entries = append(entries, fmt.Sprintf(`{"fullUrl":%q,"resource":%s,"request":{"method":"PUT","url":"%s?identifier=urn:test|%s"}}`, urn(key), body, typ, ident))
	}
	put("patient", "Patient", "p1", `{"resourceType":"Patient","identifier":[{"system":"urn:test","value":"p1"}]}`)
	for _, w := range v.writes {
		if c, ok := strings.CutPrefix(w, "obs-"); ok {
			put(w, "Observation", "o-"+c, fmt.Sprintf(`{"resourceType":"Observation","identifier":[{"system":"urn:test","value":"o-%s"}],"status":"final","code":{"text":%q},"subject":{"reference":%q}}`, c, c, urn("patient")))
		} else {
			put(w, "Practitioner", "dr", `{"resourceType":"Practitioner","identifier":[{"system":"urn:test","value":"dr"}]}`)
		}
	}
	var refs []string
	for _, t := range v.targets {
		refs = append(refs, fmt.Sprintf(`{"reference":%q}`, urn(t)))
	}
	source, recorded, role, agent := or(v.source, "rec-1"), or(v.recorded, "2026-01-01T00:00:00Z"), or(v.role, "source"), or(v.agent, "https://proms.example.org")
	entries = append(entries, fmt.Sprintf(`{"resource":{"resourceType":"Provenance","id":"prov-%s","target":[%s],"recorded":%q,"agent":[{"who":{"identifier":{"system":"urn:ietf:rfc:3986","value":%q}}}],"entity":[{"role":%q,"what":{"identifier":{"system":"urn:test:record","value":%q}}}]},"request":{"method":"PUT","url":"Provenance/prov-%s"}}`,
		v.id, strings.Join(refs, ","), recorded, agent, role, source, v.id))
	return `{"resourceType":"Bundle","type":"transaction","entry":[` + strings.Join(entries, ",") + `]}`
}

// retractObservations marks Observations entered-in-error.
func retractObservations(typ string, body []byte) ([]byte, bool) {
	if typ != "Observation" {
		return nil, false
	}
	if strings.Contains(string(body), `"status":"entered-in-error"`) {
		return nil, true
	}
	return []byte(strings.Replace(string(body), `"status":"final"`, `"status":"entered-in-error"`, 1)), true
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestCommitSupersede(t *testing.T) {
	all := []string{"obs-a", "obs-b", "practitioner"}
	first := version{id: "1", writes: all, targets: []string{"patient", "obs-a", "obs-b", "practitioner"}}
	on := rest.CommitOptions{Supersede: true}
	tests := []struct {
		name string
		opts rest.CommitOptions
		// before are committed after first; last is the version under
		// test, which must delete the types in deleted (by count) or, when
		// conflict is set, fail with 409.
		before   []version
		last     version
		deleted  map[string]int
		conflict bool
	}{
		{"what the source no longer makes is deleted", on, nil,
			version{id: "2", recorded: "2026-02-01T00:00:00Z", writes: []string{"obs-a", "practitioner"}, targets: []string{"patient", "obs-a", "practitioner"}},
			map[string]int{"Observation": 1}, false},
		{"what the new version still writes stays, targeted or not", on, nil,
			version{id: "2", recorded: "2026-02-01T00:00:00Z", writes: all, targets: []string{"patient", "obs-a"}},
			map[string]int{}, false},
		{"Keep protects shared types", rest.CommitOptions{Supersede: true, Keep: func(typ string) bool { return typ == "Practitioner" }}, nil,
			version{id: "2", recorded: "2026-02-01T00:00:00Z", writes: []string{"obs-a", "obs-b"}, targets: []string{"patient", "obs-a", "obs-b"}},
			map[string]int{}, false},
		{"without Keep a shared type goes too", on, nil,
			version{id: "2", recorded: "2026-02-01T00:00:00Z", writes: []string{"obs-a", "obs-b"}, targets: []string{"patient", "obs-a", "obs-b"}},
			map[string]int{"Practitioner": 1}, false},
		{"the same version sent again deletes nothing", on, nil, first, map[string]int{}, false},
		{"without Supersede nothing is deleted", rest.CommitOptions{}, nil,
			version{id: "2", recorded: "2026-02-01T00:00:00Z", writes: []string{"obs-a"}, targets: []string{"patient", "obs-a"}},
			map[string]int{}, false},
		{"a Provenance that derives from the record is not an earlier version", on,
			[]version{{id: "analysis", role: "derivation", recorded: "2026-01-15T00:00:00Z", writes: append([]string{"obs-z"}, all...), targets: []string{"obs-z"}}},
			version{id: "2", recorded: "2026-02-01T00:00:00Z", writes: all, targets: []string{"patient", "obs-a", "obs-b", "practitioner"}},
			map[string]int{}, false},
		{"another system's account of the source is not an earlier version", on,
			[]version{{id: "other", agent: "https://other.example.org", recorded: "2026-01-15T00:00:00Z", writes: append([]string{"obs-z"}, all...), targets: []string{"obs-z"}}},
			version{id: "2", recorded: "2026-02-01T00:00:00Z", writes: all, targets: []string{"patient", "obs-a", "obs-b", "practitioner"}},
			map[string]int{}, false},
		{"a version older than the stored one is refused", on,
			[]version{{id: "3", recorded: "2026-03-01T00:00:00Z", writes: all, targets: []string{"patient", "obs-a", "obs-b", "practitioner"}}},
			version{id: "2", recorded: "2026-02-01T00:00:00Z", writes: []string{"obs-a"}, targets: []string{"patient", "obs-a"}},
			nil, true},
		{"Retract marks what it can entered-in-error and the rest is deleted", rest.CommitOptions{Supersede: true, Retract: retractObservations},
			nil,
			version{id: "2", recorded: "2026-02-01T00:00:00Z", writes: []string{"obs-a"}, targets: []string{"patient", "obs-a"}},
			map[string]int{"Observation retracted": 1, "Practitioner": 1}, false},
		{"what another source still targets stays", on,
			[]version{{id: "r2", source: "rec-2", writes: []string{"obs-b"}, targets: []string{"patient", "obs-b"}}},
			version{id: "2", recorded: "2026-02-01T00:00:00Z", writes: []string{"obs-a", "practitioner"}, targets: []string{"patient", "obs-a", "practitioner"}},
			map[string]int{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forEachEngine(t, nil, func(t *testing.T, g *gateway) {
				ctx := context.Background()
				for _, v := range append([]version{first}, tc.before...) {
					if _, err := g.srv.Commit(ctx, []byte(v.bundle()), tc.opts); err != nil {
						t.Fatalf("version %s: %v", v.id, err)
					}
				}
				before := g.versions()
				done, err := g.srv.Commit(ctx, []byte(tc.last.bundle()), tc.opts)
				if tc.conflict {
					if outcome.Status(outcome.As(err)) != http.StatusConflict {
						t.Fatalf("got %v; want a 409", err)
					}
					if g.versions() != before {
						t.Error("the refused version stored something")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]int{}
				for _, c := range done {
					if c.Retracted {
						got[c.Type+" retracted"]++
						if r := g.do("GET", "/"+c.Type+"/"+c.ID, ""); r.status != http.StatusOK || !strings.Contains(string(r.body), `"entered-in-error"`) {
							t.Errorf("%s/%s reported retracted; read gives %d %s", c.Type, c.ID, r.status, r.body)
						}
					}
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
