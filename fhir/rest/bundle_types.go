package rest

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/store"
)

// bundle is the part of Bundle the server writes (R4 Bundle resource).
type bundle struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Meta         *bundleMeta   `json:"meta,omitempty"`
	Type         string        `json:"type"`
	Total        *int          `json:"total,omitempty"`
	Link         []bundleLink  `json:"link,omitempty"`
	Entry        []bundleEntry `json:"entry,omitempty"`
}

type bundleMeta struct {
	LastUpdated string `json:"lastUpdated"`
}

type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *entrySearch    `json:"search,omitempty"`
	Request  *entryRequest   `json:"request,omitempty"`
	Response *entryResponse  `json:"response,omitempty"`
}

type entrySearch struct {
	Mode string `json:"mode"`
}

type entryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

type entryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

// statusText renders an HTTP status as Bundle.entry.response.status wants
// it: the code, optionally followed by the reason phrase.
func statusText(code int) string {
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

// versionEntry describes one stored version in a history Bundle.
func versionEntry(base string, v *store.Resource) bundleEntry {
	e := bundleEntry{
		FullURL: base + "/" + v.Type + "/" + v.ID,
		Request: &entryRequest{Method: v.Method, URL: v.Type + "/" + v.ID},
		Response: &entryResponse{
			Etag:         etag(v),
			LastModified: resource.Instant(v.LastUpdated),
		},
	}
	switch {
	case v.Deleted:
		e.Response.Status = statusText(http.StatusGone)
	case v.Method == http.MethodPost:
		e.Request.URL = v.Type
		e.Response.Status = statusText(http.StatusCreated)
		e.Response.Location = versionedPath(v)
	default:
		e.Response.Status = statusText(http.StatusOK)
	}
	if !v.Deleted {
		e.Resource = v.Body
	}
	return e
}

// bytes renders b as encoding/json would (field order, omitempty, no HTML
// escaping), without re-validating and compacting the resources it
// carries: they are bodies the store holds, checked and compacted when
// they were written, and encoding/json's pass over every raw message was
// a tenth of a search's CPU.
func (b *bundle) bytes() []byte {
	n := 256
	for _, e := range b.Entry {
		n += len(e.Resource) + len(e.FullURL) + 128
	}
	out := make([]byte, 0, n)
	out = append(out, `{"resourceType":`...)
	out = resource.AppendString(out, b.ResourceType)
	if b.ID != "" {
		out = appendField(out, "id", b.ID)
	}
	if b.Meta != nil {
		out = append(out, `,"meta":{"lastUpdated":`...)
		out = resource.AppendString(out, b.Meta.LastUpdated)
		out = append(out, '}')
	}
	out = appendField(out, "type", b.Type)
	if b.Total != nil {
		out = append(out, `,"total":`...)
		out = strconv.AppendInt(out, int64(*b.Total), 10)
	}
	if len(b.Link) > 0 {
		out = append(out, `,"link":[`...)
		for i, l := range b.Link {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, `{"relation":`...)
			out = resource.AppendString(out, l.Relation)
			out = appendField(out, "url", l.URL)
			out = append(out, '}')
		}
		out = append(out, ']')
	}
	if len(b.Entry) > 0 {
		out = append(out, `,"entry":[`...)
		for i, e := range b.Entry {
			if i > 0 {
				out = append(out, ',')
			}
			out = e.appendTo(out)
		}
		out = append(out, ']')
	}
	return append(out, '}')
}

// appendTo appends e's JSON to out.
func (e *bundleEntry) appendTo(out []byte) []byte {
	out = append(out, '{')
	first := true
	sep := func() {
		if !first {
			out = append(out, ',')
		}
		first = false
	}
	if e.FullURL != "" {
		sep()
		out = append(out, `"fullUrl":`...)
		out = resource.AppendString(out, e.FullURL)
	}
	if len(e.Resource) > 0 {
		sep()
		out = append(out, `"resource":`...)
		out = append(out, e.Resource...)
	}
	if e.Search != nil {
		sep()
		out = append(out, `"search":{"mode":`...)
		out = resource.AppendString(out, e.Search.Mode)
		out = append(out, '}')
	}
	if e.Request != nil {
		sep()
		out = append(out, `"request":{"method":`...)
		out = resource.AppendString(out, e.Request.Method)
		out = appendField(out, "url", e.Request.URL)
		out = append(out, '}')
	}
	if r := e.Response; r != nil {
		sep()
		out = append(out, `"response":{"status":`...)
		out = resource.AppendString(out, r.Status)
		for _, f := range [...][2]string{{"location", r.Location}, {"etag", r.Etag}, {"lastModified", r.LastModified}} {
			if f[1] != "" {
				out = appendField(out, f[0], f[1])
			}
		}
		if len(r.Outcome) > 0 {
			out = append(out, `,"outcome":`...)
			out = append(out, r.Outcome...)
		}
		out = append(out, '}')
	}
	return append(out, '}')
}

// appendField appends ,"name":"value".
func appendField(out []byte, name, value string) []byte {
	out = append(out, ',', '"')
	out = append(out, name...)
	out = append(out, '"', ':')
	return resource.AppendString(out, value)
}
