package rest

import (
	"context"
	"encoding/base64"
	"net/url"
	"strconv"
	"time"

	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
)

// maxCount caps _count on history pages.
const maxCount = 1000

// history: GET [base]/[type]/[id]/_history, [base]/[type]/_history and
// [base]/_history (R4 3.1.0.12), newest first, with _since, _at and _count.
// Pages continue through an opaque cursor, so a page does not shift when
// versions are added meanwhile.
func (s *Server) history(ctx context.Context, db store.Reader, r *Request) (*Response, error) {
	q := store.HistoryQuery{Type: r.Type, ID: r.ID, Count: 50}
	if r.ID != "" {
		if err := checkID(r.ID); err != nil {
			return nil, outcome.New(outcome.NotFound, "%v", err)
		}
	}
	if v := r.Query.Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, outcome.New(outcome.Invalid, "_count=%q is not a positive integer", v)
		}
		q.Count = min(n, maxCount)
	}
	if v := r.Query.Get("_since"); v != "" {
		start, _, err := parseDateRange(v)
		if err != nil {
			return nil, outcome.New(outcome.Invalid, "_since=%q: %v", v, err)
		}
		q.Since = start
	}
	if v := r.Query.Get("_at"); v != "" {
		start, end, err := parseDateRange(v)
		if err != nil {
			return nil, outcome.New(outcome.Invalid, "_at=%q: %v", v, err)
		}
		q.AtStart, q.AtEnd = start, end
	}
	if v := r.Query.Get("_cursor"); v != "" {
		c, err := decodeCursor(v)
		if err != nil {
			return nil, outcome.New(outcome.Invalid, "_cursor=%q is not a cursor this server issued", v)
		}
		q.Cursor = c
	}
	if r.ID != "" {
		// History of a resource that never existed is 404, not an empty page.
		if _, err := db.VRead(ctx, r.Type, r.ID, 1); err != nil {
			return nil, err
		}
	}
	page, err := db.History(ctx, q)
	if err != nil {
		return nil, err
	}
	path := "_history"
	switch {
	case r.ID != "":
		path = r.Type + "/" + r.ID + "/_history"
	case r.Type != "":
		path = r.Type + "/_history"
	}
	b := bundle{ResourceType: "Bundle", Type: "history", Total: &page.Total,
		Meta: &bundleMeta{LastUpdated: resource.Instant(time.Now())}}
	b.Link = append(b.Link, bundleLink{"self", pageURL(r.Base, path, r.Query, "")})
	if page.Next != 0 {
		b.Link = append(b.Link, bundleLink{"next", pageURL(r.Base, path, r.Query, encodeCursor(page.Next))})
	}
	for _, v := range page.Versions {
		b.Entry = append(b.Entry, versionEntry(r.Base, v))
	}
	return &Response{Status: 200, Body: b.bytes()}, nil
}

// pageURL builds a paging link from the query's history parameters.
func pageURL(base, path string, q url.Values, cursor string) string {
	out := url.Values{}
	for _, k := range []string{"_count", "_since", "_at", "_format", "_pretty"} {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	if cursor != "" {
		out.Set("_cursor", cursor)
	} else if v := q.Get("_cursor"); v != "" {
		out.Set("_cursor", v)
	}
	u := base + "/" + path
	if len(out) > 0 {
		u += "?" + out.Encode()
	}
	return u
}

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("h" + strconv.FormatInt(seq, 10)))
}

func decodeCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 'h' {
		return 0, outcome.New(outcome.Invalid, "bad cursor")
	}
	n, err := strconv.ParseInt(string(b[1:]), 10, 64)
	if err != nil || n < 1 {
		return 0, outcome.New(outcome.Invalid, "bad cursor")
	}
	return n, nil
}

// parseDateRange reads a FHIR date, dateTime or instant and returns the
// range its precision covers (R4 3.1.1.5.4: a date is a range), with the
// same rules as search.
func parseDateRange(v string) (time.Time, time.Time, error) {
	lo, hi, ok := search.DateRange(v)
	if !ok {
		return time.Time{}, time.Time{}, outcome.New(outcome.Invalid, "not a FHIR date, dateTime or instant")
	}
	return time.UnixMicro(lo).UTC(), time.UnixMicro(hi).UTC(), nil
}
