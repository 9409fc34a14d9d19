package rest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/promsgateway/gateway/fhir/rest"
	"github.com/promsgateway/gateway/vault/devkeystore"
)

func reidentifyBody(domain, code string) string {
	return `{"resourceType":"Parameters","parameter":[{"name":"domain","valueString":"` + domain + `"},{"name":"pseudonym","valueString":"` + code + `"}]}`
}

// $reidentify answers only a key holder the key service accepts, and every
// call, allowed or refused, leaves an AuditEvent.
func TestReidentify(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		expect(t, g.do("PUT", "/Patient/p1", `{"resourceType":"Patient","id":"p1"}`), 201)
		codes, err := g.pseudonyms.Pseudonyms(context.Background(), "study-S1", []string{"p1"})
		if err != nil {
			t.Fatal(err)
		}
		holder := devkeystore.DevelopmentHolder
		tests := []struct {
			name, body, credential string
			status                 int
			audited                bool
		}{
			{"key holder", reidentifyBody("study-S1", codes[0]), holder, 200, true},
			{"typed in lower case", reidentifyBody("study-S1", strings.ToLower(codes[0])), holder, 200, true},
			{"no credential", reidentifyBody("study-S1", codes[0]), "", 403, true},
			{"refused credential", reidentifyBody("study-S1", codes[0]), "someone-else", 403, true},
			{"other domain", reidentifyBody("site-RXY01", codes[0]), holder, 404, true},
			{"mistyped pseudonym", reidentifyBody("study-S1", "AAAA-AAAA-AAAA-A"), holder, 400, true},
			{"bad domain", reidentifyBody("S1", codes[0]), holder, 400, true},
			{"not Parameters", `{"resourceType":"Patient"}`, holder, 400, true},
		}
		audits := 0
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var r reply
				if tc.credential != "" {
					r = g.do("POST", "/$reidentify", tc.body, rest.KeyHolderHeader, tc.credential)
				} else {
					r = g.do("POST", "/$reidentify", tc.body)
				}
				expect(t, r, tc.status)
				if tc.status == 200 && !strings.Contains(string(r.body), `"reference":"Patient/p1"`) {
					t.Errorf("no patient in %s", r.body)
				}
				if tc.status != 200 && (strings.Contains(string(r.body), "Patient/p1") || !strings.Contains(string(r.body), "OperationOutcome")) {
					t.Errorf("refusal: %s", r.body)
				}
				if tc.audited {
					audits++
				}
				s := g.do("GET", "/AuditEvent?_count=0", "")
				expect(t, s, 200)
				if total := s.json(t)["total"]; total != float64(audits) {
					t.Errorf("%v AuditEvents after %d calls", total, audits)
				}
			})
		}
		// The audit trail names the outcome, the holder and the pseudonym.
		s := g.do("GET", "/AuditEvent?outcome=4&_count=100", "")
		expect(t, s, 200)
		if n := len(ids(t, s)); n != 6 {
			t.Errorf("%d refused calls audited; want 6", n)
		}
		ok := g.do("GET", "/AuditEvent?outcome=0&entity=Patient/p1", "")
		if n := len(ids(t, ok)); n != 2 || !strings.Contains(string(ok.body), "development key holder") || !strings.Contains(string(ok.body), codes[0]) {
			t.Errorf("successful calls' audit: %.400s", ok.body)
		}
		// The CapabilityStatement offers the operation.
		if m := g.do("GET", "/metadata", ""); !strings.Contains(string(m.body), `"name":"reidentify"`) {
			t.Error("metadata lacks $reidentify")
		}
		// Not inside a transaction: its AuditEvent must outlive any rollback.
		tx := g.do("POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[{"resource":`+reidentifyBody("study-S1", codes[0])+`,"request":{"method":"POST","url":"$reidentify"}}]}`, rest.KeyHolderHeader, holder)
		if tx.status == 200 && strings.Contains(string(tx.body), "Patient/p1") {
			t.Errorf("re-identified inside a transaction: %.300s", tx.body)
		}
	})
}
