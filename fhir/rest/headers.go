package rest

import (
	"net/http"
	"strconv"
	"time"

	"github.com/promsgateway/gateway/fhir/store"
)

// The header names the request path reads and writes, in canonical form
// (textproto.CanonicalMIMEHeaderKey), so that they index an http.Header
// directly: Header.Get and Header.Set canonicalise the name on every call,
// allocating for names such as ETag and X-Request-ID that are not, and on a
// read by id that was 7% of the gateway's instructions.
const (
	hAccept          = "Accept"
	hContentLocation = "Content-Location"
	hContentType     = "Content-Type"
	hDate            = "Date"
	hETag            = "Etag"
	hForwardedProto  = "X-Forwarded-Proto"
	hIfModifiedSince = "If-Modified-Since"
	hIfNoneMatch     = "If-None-Match"
	hLastModified    = "Last-Modified"
	hLocation        = "Location"
	hRequestID       = "X-Request-Id"
)

// headerValue returns the first value of the header named canonical.
func headerValue(h http.Header, canonical string) string {
	if v := h[canonical]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Content-Type values, shared by every response: a header's values are
// replaced, never written in place, so one slice can serve them all.
var (
	fhirJSONType = []string{fhirJSON + "; charset=utf-8"}
	plainJSON    = []string{"application/json; charset=utf-8"}
)

// contentType is the Content-Type value of a response in the negotiated
// format.
func contentType(format string) []string {
	if format == "application/json" {
		return plainJSON
	}
	return fhirJSONType
}

// setVersionHeaders sets ETag, Last-Modified, Content-Location (unless the
// version is a deletion) and, for a create, Location. Their values are cut
// from one string and held in one array, two allocations for all of them.
func setVersionHeaders(h http.Header, base string, r *store.Resource, location bool) {
	var buf [192]byte
	b := appendETag(buf[:0], r.Version)
	tag := len(b)
	b = appendHTTPDate(b, r.LastUpdated)
	date := len(b)
	b = append(b, base...)
	b = append(b, '/')
	b = store.AppendVersionPath(b, r.Type, r.ID, r.Version)
	s := string(b)
	v := &[3]string{s[:tag], s[tag:date], s[date:]}
	h[hETag] = v[0:1:1]
	h[hLastModified] = v[1:2:2]
	if location {
		h[hLocation] = v[2:3:3]
	}
	if !r.Deleted {
		h[hContentLocation] = v[2:3:3]
	}
}

// appendETag appends the weak entity tag of a version: W/"n".
func appendETag(b []byte, version int64) []byte {
	b = append(b, `W/"`...)
	b = strconv.AppendInt(b, version, 10)
	return append(b, '"')
}

func etag(r *store.Resource) string { return string(appendETag(nil, r.Version)) }

func versionedPath(r *store.Resource) string {
	return string(store.AppendVersionPath(make([]byte, 0, len(r.Type)+len(r.ID)+30), r.Type, r.ID, r.Version))
}

// appendHTTPDate appends t as t.UTC().Format(http.TimeFormat) does, for
// years 0 to 9999: "Mon, 02 Jan 2006 15:04:05 GMT".
func appendHTTPDate(b []byte, t time.Time) []byte {
	const days = "SunMonTueWedThuFriSat"
	const months = "JanFebMarAprMayJunJulAugSepOctNovDec"
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	wd := int(t.Weekday()) * 3
	b = append(b, days[wd:wd+3]...)
	b = append(b, ',', ' ')
	b = append2(b, day)
	b = append(b, ' ')
	m := (int(month) - 1) * 3
	b = append(b, months[m:m+3]...)
	b = append(b, ' ')
	b = append2(b, year/100)
	b = append2(b, year%100)
	b = append(b, ' ')
	b = append2(b, hour)
	b = append(b, ':')
	b = append2(b, minute)
	b = append(b, ':')
	b = append2(b, sec)
	return append(b, " GMT"...)
}

// append2 appends n (0-99) in two digits.
func append2(b []byte, n int) []byte {
	return append(b, byte('0'+n/10), byte('0'+n%10))
}
