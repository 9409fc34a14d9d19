package rest

import (
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promsgateway/gateway/fhir/store"
)

func TestHeaderNamesAreCanonical(t *testing.T) {
	for _, name := range []string{hAccept, hContentLocation, hContentType, hDate, hETag, hForwardedProto,
		hIfModifiedSince, hIfNoneMatch, hLastModified, hLocation, hRequestID} {
		if c := textproto.CanonicalMIMEHeaderKey(name); c != name {
			t.Errorf("%q is not canonical: %q", name, c)
		}
	}
}

func TestHeaderValue(t *testing.T) {
	h := http.Header{}
	h.Add("x-request-id", "first")
	h.Add("X-REQUEST-ID", "second")
	cases := []struct {
		h    http.Header
		name string
		want string
	}{
		{h, hRequestID, "first"},
		{h, hAccept, ""},
		{http.Header{hAccept: {}}, hAccept, ""},
		{nil, hAccept, ""},
	}
	for _, c := range cases {
		if got := headerValue(c.h, c.name); got != c.want || got != c.h.Get(c.name) {
			t.Errorf("headerValue(%v, %s) = %q, want %q (Header.Get)", c.h, c.name, got, c.want)
		}
	}
}

// TestAppendHTTPDate compares appendHTTPDate with time's own formatting.
func TestAppendHTTPDate(t *testing.T) {
	times := []time.Time{
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 3, 9, 5, 58, 999999999, time.FixedZone("", -8*3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(100, 2, 28, 1, 2, 3, 0, time.UTC),
		time.Now(),
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 5000; i++ {
		times = append(times, time.Unix(rng.Int64N(253402300799), rng.Int64N(1e9)).In(time.FixedZone("", rng.IntN(50401)-43200)))
	}
	for _, at := range times {
		if got, want := string(appendHTTPDate(nil, at)), at.UTC().Format(http.TimeFormat); got != want {
			t.Fatalf("%v: got %s, want %s", at, got, want)
		}
	}
}

func TestSetVersionHeaders(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 5, 58, 0, time.UTC)
	cases := []struct {
		name     string
		res      store.Resource
		location bool
		want     http.Header
	}{
		{"read", store.Resource{Type: "Patient", ID: "p1", Version: 3, LastUpdated: at}, false, http.Header{
			"Etag": {`W/"3"`}, "Last-Modified": {"Thu, 03 Dec 2026 09:05:58 GMT"},
			"Content-Location": {"http://gw/fhir/Patient/p1/_history/3"}}},
		{"create", store.Resource{Type: "Observation", ID: "o-1", Version: 1, LastUpdated: at}, true, http.Header{
			"Etag": {`W/"1"`}, "Last-Modified": {"Thu, 03 Dec 2026 09:05:58 GMT"},
			"Location":         {"http://gw/fhir/Observation/o-1/_history/1"},
			"Content-Location": {"http://gw/fhir/Observation/o-1/_history/1"}}},
		{"delete", store.Resource{Type: "Patient", ID: "p1", Version: 12, LastUpdated: at, Deleted: true}, false, http.Header{
			"Etag": {`W/"12"`}, "Last-Modified": {"Thu, 03 Dec 2026 09:05:58 GMT"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			setVersionHeaders(h, "http://gw/fhir", &c.res, c.location)
			if len(h) != len(c.want) {
				t.Fatalf("headers %v, want %v", h, c.want)
			}
			for k, v := range c.want {
				if got := h.Values(k); len(got) != 1 || got[0] != v[0] {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			// A value added later must not reach another header.
			h.Add(hLocation, "extra")
			if h.Get(hContentLocation) != c.want.Get(hContentLocation) {
				t.Errorf("adding to Location changed Content-Location: %q", h.Values(hContentLocation))
			}
		})
	}
}

func TestSplitPath(t *testing.T) {
	for _, path := range []string{"", "Patient", "Patient/p1", "Patient/p1/_history/2", "Patient//p1", "a/b/c/d/e/f/g/h/i/j"} {
		var buf [8]string
		got := splitPath(buf[:0], path)
		want := strings.Split(path, "/")
		if path == "" {
			want = nil
		}
		if !slices.Equal(got, want) {
			t.Errorf("splitPath(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestDateCache(t *testing.T) {
	var d dateCache
	at := time.Date(2026, 12, 3, 9, 5, 58, 100, time.UTC)
	first := d.at(at)
	cases := []struct {
		at   time.Time
		want string
		same bool // the same slice as the first
	}{
		{at.Add(500 * time.Millisecond), "Thu, 03 Dec 2026 09:05:58 GMT", true},
		{at.Add(time.Second), "Thu, 03 Dec 2026 09:05:59 GMT", false},
		{at.Add(-time.Second), "Thu, 03 Dec 2026 09:05:57 GMT", false},
	}
	if len(first) != 1 || first[0] != "Thu, 03 Dec 2026 09:05:58 GMT" {
		t.Fatalf("first %q", first)
	}
	for _, c := range cases {
		got := d.at(c.at)
		if len(got) != 1 || got[0] != c.want || (&got[0] == &first[0]) != c.same {
			t.Errorf("at %v: %q (shared with the first: %v), want %q (%v)", c.at, got, &got[0] == &first[0], c.want, c.same)
		}
	}
}

func TestBase(t *testing.T) {
	s := &Server{}
	cases := []struct {
		host, proto string
		want        string
	}{
		{"gw.example.nhs.uk", "", "http://gw.example.nhs.uk/fhir"},
		{"gw.example.nhs.uk", "", "http://gw.example.nhs.uk/fhir"},
		{"gw.example.nhs.uk", "https", "https://gw.example.nhs.uk/fhir"},
		{"10.0.0.7:8080", "", "http://10.0.0.7:8080/fhir"},
		{"gw.example.nhs.uk", "gopher", "http://gw.example.nhs.uk/fhir"},
	}
	for _, c := range cases {
		r := &http.Request{Host: c.host, Header: http.Header{}}
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		if got := s.base(r); got != c.want {
			t.Errorf("base(%s, %q) = %s, want %s", c.host, c.proto, got, c.want)
		}
	}
	s.cfg.BaseURL = "https://fhir.example.org/r4/"
	if got := s.base(&http.Request{Host: "ignored", Header: http.Header{}}); got != "https://fhir.example.org/r4" {
		t.Errorf("configured base: %s", got)
	}
}
