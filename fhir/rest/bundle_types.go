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
