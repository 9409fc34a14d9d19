package rest

import (
	"reflect"
	"strings"
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

// TestParseBundle covers what parseBundle takes from a Bundle and what it
// refuses.
func TestParseBundle(t *testing.T) {
	tests := []struct {
		name, in string
		want     inBundle
		err      string // part of the error; "" for none
	}{
		{"transaction", `{"resourceType":"Bundle","type":"transaction","entry":[
			{"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=a|b"}},
			{"request":{"method":"GET","url":"Patient/1","ifNoneMatch":"W/\"1\"","ifModifiedSince":"2026-01-01","ifMatch":"W/\"2\""}}]}`,
			inBundle{ResourceType: "Bundle", Type: "transaction", Entry: []inEntry{
				{FullURL: "urn:uuid:1", Resource: []byte(`{"resourceType":"Patient"}`), Request: &entryRequestIn{Method: "POST", URL: "Patient", IfNoneExist: "identifier=a|b"}},
				{Request: &entryRequestIn{Method: "GET", URL: "Patient/1", IfNoneMatch: `W/"1"`, IfModifiedSince: "2026-01-01", IfMatch: `W/"2"`}},
			}}, ""},
		{"escapes and white space", " {\"resourceType\" : \"Bundle\" , \"type\":\"b\\u0061tch\", \"entry\" : [ ] } ",
			inBundle{ResourceType: "Bundle", Type: "batch", Entry: []inEntry{}}, ""},
		{"nulls are absent", `{"resourceType":"Bundle","type":"batch","entry":[null,{"fullUrl":null,"resource":null,"request":null}]}`,
			inBundle{ResourceType: "Bundle", Type: "batch", Entry: []inEntry{{}, {}}}, ""},
		{"no entries", `{"resourceType":"Bundle","type":"batch","entry":null}`, inBundle{ResourceType: "Bundle", Type: "batch"}, ""},
		{"names are case-sensitive", `{"ResourceType":"Bundle","Type":"batch"}`, inBundle{}, ""},
		{"other names are not read", `{"resourceType":"Bundle","Type":"batch","Entry":[{}]}`, inBundle{ResourceType: "Bundle"}, ""},
		{"other elements are ignored", `{"resourceType":"Bundle","id":"x","meta":{"tag":[]},"type":"batch","total":3}`, inBundle{ResourceType: "Bundle", Type: "batch"}, ""},
		{"not JSON", `{"resourceType":"Bundle",`, inBundle{}, "invalid JSON"},
		{"not an object", `[]`, inBundle{}, "object"},
		{"repeated property", `{"resourceType":"Bundle","type":"batch","type":"transaction"}`, inBundle{}, "duplicate"},
		{"type not a string", `{"resourceType":"Bundle","type":1}`, inBundle{}, "Bundle.type is not a string"},
		{"resourceType not a string", `{"resourceType":["Bundle"]}`, inBundle{}, "resourceType is not a string"},
		{"entry not an array", `{"resourceType":"Bundle","type":"batch","entry":{}}`, inBundle{}, "Bundle.entry is not an array"},
		{"entry not an object", `{"resourceType":"Bundle","type":"batch","entry":[{},"x"]}`, inBundle{}, "Bundle.entry[1] is not an object"},
		{"request not an object", `{"resourceType":"Bundle","type":"batch","entry":[{"request":[]}]}`, inBundle{}, "Bundle.entry[0].request is not an object"},
		{"method not a string", `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":true}}]}`, inBundle{}, "Bundle.entry[0].request.method is not a string"},
		{"repeated property in an entry", `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient"},"request":{"method":"GET","url":"Patient"}}]}`, inBundle{}, `Bundle.entry[0]: duplicate property "request"`},
		{"repeated property in a request", `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","method":"POST"}}]}`, inBundle{}, `Bundle.entry[0].request: duplicate property "method"`},
		{"invalid UTF-8", "{\"resourceType\":\"Bundle\",\"type\":\"batch\",\"entry\":[{\"fullUrl\":\"urn:\xff\"}]}", inBundle{}, "UTF-8"},
		{"not a Bundle stops at resourceType", `{"resourceType":"Composition","type":{"text":"x"}}`, inBundle{ResourceType: "Composition"}, ""},
		{"fullUrl not a string", `{"resourceType":"Bundle","type":"batch","entry":[{"fullUrl":7}]}`, inBundle{}, "Bundle.entry[0].fullUrl is not a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBundle([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
