package rest

import (
	"testing"
)

// bundle.bytes writes what encoding/json writes for the same bundle, byte
// for byte, for every shape the server sends and for strings that need
// escaping.
func TestBundleBytesMatchEncodingJSON(t *testing.T) {
	total, zero := 12, 0
	resource := []byte(`{"resourceType":"Patient","id":"p1","name":[{"family":"O'Brien \"Jr\" <b>"}]}`)
	outcome := []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"warning","code":"informational"}]}`)
	tests := []struct {
		name string
		b    bundle
	}{
		{"empty searchset", bundle{ResourceType: "Bundle", Type: "searchset", Total: &zero}},
		{"searchset", bundle{ResourceType: "Bundle", Type: "searchset", Meta: &bundleMeta{LastUpdated: "2026-12-02T05:00:00Z"}, Total: &total,
			Link: []bundleLink{{"self", "http://h/fhir/Patient?name=a%7Cb&_count=2"}, {"next", "http://h/fhir/Patient?_cursor=x&y=<z>"}},
			Entry: []bundleEntry{
				{FullURL: "http://h/fhir/Patient/p1", Resource: resource, Search: &entrySearch{Mode: "match"}},
				{FullURL: "http://h/fhir/Patient/p2", Resource: resource, Search: &entrySearch{Mode: "include"}},
				{Resource: outcome, Search: &entrySearch{Mode: "outcome"}},
			}}},
		{"history", bundle{ResourceType: "Bundle", Type: "history", Entry: []bundleEntry{
			{FullURL: "u", Request: &entryRequest{"POST", "Patient"}, Response: &entryResponse{Status: "201 Created", Location: "Patient/p1/_history/1", Etag: `W/"1"`, LastModified: "2026-12-02T05:00:00Z"}, Resource: resource},
			{FullURL: "u", Request: &entryRequest{"DELETE", "Patient/p1"}, Response: &entryResponse{Status: "410 Gone", Etag: `W/"2"`}},
		}}},
		{"transaction-response", bundle{ResourceType: "Bundle", ID: "b-1", Type: "transaction-response", Entry: []bundleEntry{
			{Response: &entryResponse{Status: "200 OK", Outcome: outcome}},
			{Response: &entryResponse{Status: "204 No Content"}},
			{},
		}}},
		{"escapes", bundle{ResourceType: "Bundle", ID: "quote\" back\\ nl\n cr\r tab\t bs\b ff\f nul\x00 us\x1f", Type: "ls\u2028ps\u2029 é 😀 bad\xff\xfe end"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := marshal(tc.b)
			if got := tc.b.bytes(); string(got) != string(want) {
				t.Errorf("bytes:\n%s\nencoding/json:\n%s", got, want)
			}
		})
	}
}
