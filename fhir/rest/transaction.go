package rest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/promsgateway/gateway/conformance/strict"
	"github.com/promsgateway/gateway/fhir/outcome"
	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/spec"
	"github.com/promsgateway/gateway/fhir/store"
)

type inBundle struct {
	ResourceType string
	Type         string
	Entry        []inEntry
}

type inEntry struct {
	FullURL  string
	Resource json.RawMessage
	Request  *entryRequestIn
}

// entryRequestIn is Bundle.entry.request as a client sends it.
type entryRequestIn struct {
	Method, URL, IfNoneMatch, IfModifiedSince, IfMatch, IfNoneExist string
}

// parseBundle reads the parts of a batch or transaction Bundle the server
// acts on. Property names are matched exactly, as FHIR's JSON defines them
// (encoding/json would take "ResourceType" for resourceType); a repeated
// property is refused (ParseObject), and a null is taken as absent.
func parseBundle(raw []byte) (inBundle, error) {
	var b inBundle
	obj, err := resource.ParseObject(raw)
	if err != nil {
		return b, err
	}
	var ok bool
	if b.ResourceType, ok = stringProperty(obj, "resourceType"); !ok {
		return b, errors.New("the value of resourceType is not a string")
	}
	if b.ResourceType != "Bundle" {
		return b, nil // the caller says what a Bundle is not
	}
	if b.Type, ok = stringProperty(obj, "type"); !ok {
		return b, errors.New("the value of Bundle.type is not a string")
	}
	v, has := obj.Get("entry")
	if !has || isNull(v) {
		return b, nil
	}
	elems, ok := resource.ArrayElements(v)
	if !ok {
		return b, errors.New("the value of Bundle.entry is not an array")
	}
	b.Entry = make([]inEntry, len(elems))
	for i, el := range elems {
		if isNull(el) {
			continue
		}
		e, err := objectValue(el)
		if err != nil {
			return b, fmt.Errorf("Bundle.entry[%d]%w", i, err)
		}
		if b.Entry[i].FullURL, ok = stringProperty(e, "fullUrl"); !ok {
			return b, fmt.Errorf("the value of Bundle.entry[%d].fullUrl is not a string", i)
		}
		if res, has := e.Get("resource"); has && !isNull(res) {
			b.Entry[i].Resource = res
		}
		req, has := e.Get("request")
		if !has || isNull(req) {
			continue
		}
		ro, err := objectValue(req)
		if err != nil {
			return b, fmt.Errorf("Bundle.entry[%d].request%w", i, err)
		}
		r := &entryRequestIn{}
		for _, f := range []struct {
			name string
			dst  *string
		}{{"method", &r.Method}, {"url", &r.URL}, {"ifNoneMatch", &r.IfNoneMatch}, {"ifModifiedSince", &r.IfModifiedSince}, {"ifMatch", &r.IfMatch}, {"ifNoneExist", &r.IfNoneExist}} {
			if *f.dst, ok = stringProperty(ro, f.name); !ok {
				return b, fmt.Errorf("the value of Bundle.entry[%d].request.%s is not a string", i, f.name)
			}
		}
		b.Entry[i].Request = r
	}
	return b, nil
}

// errNotObject follows the path of a value that is not a JSON object.
var errNotObject = errors.New(" is not an object")

// objectValue reads v, a value of a parsed object, as an object. Its
// errors start where the value's path ends: " is not an object", or ":
// duplicate property ...".
func objectValue(v json.RawMessage) (resource.Object, error) {
	if v[0] != '{' {
		return nil, errNotObject
	}
	o, err := resource.ParseValidObject(v)
	if err != nil {
		return nil, fmt.Errorf(": %w", err)
	}
	return o, nil
}

// stringProperty returns obj's property name when it is a string, "" when
// it is absent or null; ok is false when it is anything else.
func stringProperty(obj resource.Object, name string) (s string, ok bool) {
	if s, ok = obj.String(name); ok {
		return s, true
	}
	v, has := obj.Get(name)
	return "", !has || isNull(v)
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }

// planned is one entry turned into a routed request.
type planned struct {
	index   int
	fullURL string
	route   *route
	req     Request
	// existing is set when a conditional create in a transaction matched a
	// resource: the entry then creates nothing and answers with it.
	existing *store.Resource
}

// bundle: POST [base] with a batch or transaction Bundle (R4 3.1.0.11).
func (s *Server) bundle(ctx context.Context, r *Request) (*Response, error) {
	if err := resource.CheckDepth(r.Body, s.cfg.MaxDepth); err != nil {
		return nil, outcome.New(outcome.Invalid, "%v", err)
	}
	b, err := parseBundle(r.Body)
	if err != nil {
		return nil, outcome.New(outcome.Invalid, "the body is not a Bundle: %v", err)
	}
	if b.ResourceType != "Bundle" {
		return nil, outcome.At(outcome.Invalid, "invalid", "resourceType", "POST to the base needs a Bundle, not %q", b.ResourceType)
	}
	if len(b.Entry) > s.cfg.MaxBundleEntries {
		return nil, outcome.New(outcome.TooLarge, "the Bundle has %d entries; the limit is %d", len(b.Entry), s.cfg.MaxBundleEntries)
	}
	switch b.Type {
	case "transaction":
		return s.transaction(ctx, r, b)
	case "batch":
		return s.batch(ctx, r, b)
	}
	return nil, outcome.At(outcome.Invalid, "value", "Bundle.type", "Bundle.type must be batch or transaction, not %q", b.Type)
}

// plan turns entry i into a routed request.
func (s *Server) plan(r *Request, i int, e inEntry) (*planned, error) {
	at := fmt.Sprintf("Bundle.entry[%d]", i)
	if e.Request == nil || e.Request.Method == "" || e.Request.URL == "" {
		return nil, outcome.At(outcome.Invalid, "required", at+".request", "entry %d has no request method and url", i)
	}
	p := &planned{index: i, fullURL: e.FullURL}
	p.req = Request{
		Method:        strings.ToUpper(e.Request.Method),
		Header:        http.Header{},
		Base:          r.Base,
		Query:         url.Values{},
		skipUnchanged: r.skipUnchanged,
	}
	for k, v := range map[string]string{"If-None-Match": e.Request.IfNoneMatch, "If-Modified-Since": e.Request.IfModifiedSince,
		"If-Match": e.Request.IfMatch, "If-None-Exist": e.Request.IfNoneExist} {
		if v != "" {
			p.req.Header.Set(k, v)
		}
	}
	if pref := r.Header.Get("Prefer"); pref != "" {
		p.req.Header.Set("Prefer", pref)
	}
	raw := strings.TrimPrefix(e.Request.URL, r.Base+"/")
	if strings.Contains(raw, "://") {
		return nil, outcome.At(outcome.Invalid, "value", at+".request.url", "entry %d's url %q is not on this server", i, e.Request.URL)
	}
	path, query, _ := strings.Cut(raw, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, outcome.At(outcome.Invalid, "value", at+".request.url", "entry %d's url has a bad query: %v", i, err)
	}
	p.req.Query = q
	rt, err := s.match(p.req.Method, path, &p.req)
	if err != nil {
		return nil, entryError(i, err)
	}
	if rt.bundle {
		return nil, outcome.At(outcome.Invalid, "not-supported", at+".request", "entry %d: Bundles cannot nest", i)
	}
	p.route = rt
	switch p.req.Method {
	case http.MethodPost, http.MethodPut:
		if len(e.Resource) == 0 {
			return nil, outcome.At(outcome.Invalid, "required", at+".resource", "entry %d (%s) has no resource", i, p.req.Method)
		}
		p.req.Body = e.Resource
	case http.MethodPatch:
		body, err := patchBody(e.Resource)
		if err != nil {
			return nil, entryError(i, err)
		}
		p.req.Body = body
	}
	return p, nil
}

// patchBody reads a JSON Patch carried in a Bundle entry as a Binary of
// content type application/json-patch+json (R4 3.1.0.7).
func patchBody(raw json.RawMessage) ([]byte, error) {
	var bin struct {
		ResourceType string `json:"resourceType"`
		ContentType  string `json:"contentType"`
		Data         string `json:"data"`
	}
	if err := json.Unmarshal(raw, &bin); err != nil || bin.ResourceType != "Binary" || !strings.HasPrefix(bin.ContentType, "application/json-patch+json") {
		return nil, outcome.New(outcome.Invalid, "a PATCH entry needs a Binary resource with contentType application/json-patch+json")
	}
	body, err := base64.StdEncoding.DecodeString(bin.Data)
	if err != nil {
		return nil, outcome.New(outcome.Invalid, "the PATCH entry's Binary.data is not base64: %v", err)
	}
	return body, nil
}

// entryError places err at entry i of the Bundle.
func entryError(i int, err error) error {
	// Store and key-service errors (a timeout, an unavailable Vault) keep
	// their meaning when they name an entry.
	oe := outcome.As(storeError(err))
	out := &outcome.Error{Kind: oe.Kind, Cause: oe.Cause}
	for _, is := range oe.Issues {
		is.Diagnostics = fmt.Sprintf("Bundle.entry[%d]: %s", i, is.Diagnostics)
		if len(is.Expression) == 0 {
			is.Expression = []string{fmt.Sprintf("Bundle.entry[%d]", i)}
		}
		out.Issues = append(out.Issues, is)
	}
	return out
}

// order is the processing order of a transaction (R4 3.1.0.11.2): deletes,
// then creates, then updates and patches, then reads.
func order(method string) int {
	switch method {
	case http.MethodDelete:
		return 0
	case http.MethodPost:
		return 1
	case http.MethodPut, http.MethodPatch:
		return 2
	}
	return 3
}

// transaction processes every entry in one database transaction: all
// succeed or nothing is stored. Resolving identities and checking resources
// is done before the transaction starts when it needs no database lookups
// (no conditional create, update or reference), so locks are held only for
// the writes themselves.
func (s *Server) transaction(ctx context.Context, r *Request, b inBundle) (*Response, error) {
	plans, resps, err := s.runTransaction(ctx, r, b, nil)
	if err != nil {
		return nil, err
	}
	out := make([]bundleEntry, len(plans))
	for i, p := range plans {
		out[i] = responseEntry(r.Base, &p.req, resps[i])
	}
	return &Response{Status: http.StatusOK, Body: (&bundle{ResourceType: "Bundle", ID: uuid.NewString(), Type: "transaction-response", Entry: out}).bytes()}, nil
}

// runTransaction carries out a transaction's entries atomically and returns
// them with their responses, in the Bundle's order.
//
// after, when set, runs inside the transaction once every entry has run,
// with their plans and responses.
func (s *Server) runTransaction(ctx context.Context, r *Request, b inBundle, after func(ctx context.Context, tx store.Tx, plans []*planned, resps []*Response) error) ([]*planned, []*Response, error) {
	early, err := s.prepareEntries(ctx, nil, r, b, nil)
	if err != nil && !errors.Is(err, errNeedsDB) {
		return nil, nil, err
	}
	var pre *prechecked
	if early == nil {
		// Identities need the database, so the entries are prepared inside
		// the transaction; check and index their bodies now, without
		// holding any lock.
		if pre, err = s.precheck(ctx, r, b); err != nil {
			return nil, nil, err
		}
	}
	var plans []*planned
	var resps []*Response
	err = s.store.InTx(ctx, func(tx store.Tx) error {
		plans = early
		if plans == nil {
			var err error
			if plans, err = s.prepareEntries(ctx, tx, r, b, pre); err != nil {
				return err
			}
		}
		sorted := append([]*planned(nil), plans...)
		sort.SliceStable(sorted, func(i, j int) bool { return order(sorted[i].req.Method) < order(sorted[j].req.Method) })
		resps = make([]*Response, len(plans))
		for _, p := range sorted {
			resp, err := s.runEntry(ctx, tx, p)
			if err != nil {
				return entryError(p.index, err)
			}
			resps[p.index] = resp
		}
		if after != nil {
			return after(ctx, tx, plans, resps)
		}
		return nil
	})
	if err != nil {
		return nil, nil, storeError(err)
	}
	return plans, resps, nil
}

// errNeedsDB stops prepareEntries outside a transaction when an entry's
// meaning depends on what the database holds.
var errNeedsDB = errors.New("transaction needs database lookups to prepare")

// placeholderPrefix starts the ids precheck gives the entries and
// conditional references of a transaction before it has decided them: one
// per fullUrl or conditional reference, so that index rows extracted with
// them can be given the real ids later.
const placeholderPrefix = "00000000-0000-4000-8000-"

// prechecked is what precheck did before the transaction: which entries it
// checked strictly and, for most of those, the search index rows of their
// bodies (blinded), extracted with placeholders where the transaction has
// yet to decide ids; placeholders maps each placeholder to the fullUrl or
// conditional reference it stands for.
type prechecked struct {
	checked []bool         // by entry: the strict check was done
	rows    [][]search.Row // by entry; nil: extract in the transaction
	// compact is, by entry, the client's body compacted (nil where
	// precheck did not compact it), with its id in ids: the transaction
	// rewrites its references to the ids it decided, and stores it.
	compact      [][]byte
	ids          []string
	placeholders map[string]string
}

// precheck checks, before the transaction, the bodies of a transaction
// whose identities need the database (conditional updates, creates and
// references): each body is checked with its references to other entries,
// and its conditional references, pointed at a placeholder id of the type
// they will have. Only the ids differ from the bodies that will be stored,
// and ids do not change what the strict check decides, so prepareEntries
// skips it for the entries precheck did. Their index rows are extracted
// and blinded here too, so the transaction (which on SQLite holds the
// database's only write lock) only puts the real ids in. A body found
// wrong fails the transaction before it takes any lock.
func (s *Server) precheck(ctx context.Context, r *Request, b inBundle) (*prechecked, error) {
	plans := make([]*planned, len(b.Entry))
	pre := &prechecked{checked: make([]bool, len(b.Entry)), rows: make([][]search.Row, len(b.Entry)),
		compact: make([][]byte, len(b.Entry)), ids: make([]string, len(b.Entry)), placeholders: map[string]string{}}
	ids := map[string]string{} // fullUrl or conditional reference -> placeholder
	placeholder := func(key string) string {
		if id, ok := ids[key]; ok {
			return id
		}
		id := fmt.Sprintf("%s%012x", placeholderPrefix, len(ids)+1)
		ids[key], pre.placeholders[id] = id, key
		return id
	}
	refs := map[string]string{}
	for i, e := range b.Entry {
		p, err := s.plan(r, i, e)
		if err != nil {
			return nil, err
		}
		plans[i] = p
		if p.fullURL != "" && p.req.Type != "" && (p.req.Method == http.MethodPost || p.req.Method == http.MethodPut) {
			refs[p.fullURL] = p.req.Type + "/" + placeholder(p.fullURL)
		}
	}
	var items []search.Indexed
	var at []int
	for i, p := range plans {
		if p.req.Body == nil || p.req.Method == http.MethodPatch {
			continue
		}
		toPlaceholders := func(ref string) (string, bool) {
			if to, ok := refs[ref]; ok {
				return to, true
			}
			if typ, _, ok := strings.Cut(ref, "?"); ok && !strings.Contains(typ, "/") {
				if _, known := spec.Lookup(typ); known {
					return typ + "/" + placeholder(ref), true
				}
			}
			return "", false
		}
		// The body is compacted before its references are rewritten,
		// which gives the bytes compacting after would (see
		// resource.RewriteReferences), and the compact body is kept for
		// the transaction. A body that does not compact takes the other
		// order, whose errors the transaction reports as it always has.
		from := p.req.Body
		compact, id, cerr := s.readResource(p.req.Body, p.req.Type, false)
		if cerr == nil {
			from = compact
		}
		body, err := resource.RewriteReferences(from, toPlaceholders)
		if err != nil {
			continue // the transaction reports it
		}
		checked := body
		if cerr == nil {
			err = strict.Check(body)
			if err != nil {
				err = validationError(err)
			}
		} else {
			checked, _, err = s.checkResource(body, p.req.Type)
		}
		if err != nil {
			return nil, entryError(i, err)
		}
		if cerr == nil {
			pre.compact[i], pre.ids[i] = compact, id
		}
		pre.checked[i] = true
		if bytes.Contains(p.req.Body, []byte(placeholderPrefix)) {
			// An id of the client's own that looks like a placeholder:
			// its rows are extracted in the transaction instead.
			continue
		}
		items = append(items, search.Indexed{Type: p.req.Type, Rows: s.extractRows(p.req.Type, checked)})
		at = append(at, i)
	}
	// One call to the key service for every entry's blind indexes.
	if err := search.BlindAll(ctx, s.keys, items); err != nil {
		return nil, storeError(err)
	}
	for n, i := range at {
		pre.rows[i] = items[n].Rows
		if pre.rows[i] == nil {
			pre.rows[i] = []search.Row{}
		}
	}
	return pre, nil
}

// compacted returns entry i's body as precheck compacted it, with its id,
// or nil when precheck did not (or pre is nil).
func (pre *prechecked) compacted(i int) ([]byte, string) {
	if pre == nil {
		return nil, ""
	}
	return pre.compact[i], pre.ids[i]
}

// rowsFor returns entry i's prechecked index rows with the placeholders
// replaced by the ids refs resolved, or false when precheck did not index
// it or a placeholder is unresolved (the caller then extracts afresh).
func (pre *prechecked) rowsFor(i int, refs map[string]string) ([]search.Row, bool) {
	if pre == nil || pre.rows[i] == nil {
		return nil, false
	}
	out := make([]search.Row, len(pre.rows[i]))
	for n, row := range pre.rows[i] {
		for _, f := range []*string{&row.Sys, &row.Val, &row.Raw} {
			for {
				k := strings.Index(*f, placeholderPrefix)
				if k < 0 {
					break
				}
				end := k + len(placeholderPrefix) + 12
				if end > len(*f) {
					return nil, false
				}
				key, ok := pre.placeholders[(*f)[k:end]]
				if !ok {
					return nil, false
				}
				_, id, ok := strings.Cut(refs[key], "/")
				if !ok {
					return nil, false
				}
				*f = (*f)[:k] + id + (*f)[end:]
			}
		}
		out[n] = row
	}
	return out, true
}

// prepareEntries plans every entry, decides identities, rewrites references
// and checks and indexes each resource (but for what precheck did, in
// pre). db is nil before the transaction; then a conditional anywhere
// returns errNeedsDB.
func (s *Server) prepareEntries(ctx context.Context, db store.Reader, r *Request, b inBundle, pre *prechecked) ([]*planned, error) {
	plans := make([]*planned, len(b.Entry))
	for i, e := range b.Entry {
		p, err := s.plan(r, i, e)
		if err != nil {
			return nil, err
		}
		if db == nil && (p.req.Header.Get("If-None-Exist") != "" || (p.req.ID == "" && p.req.Method != http.MethodPost && p.route.level == typeLevel)) {
			return nil, errNeedsDB
		}
		plans[i] = p
	}
	refs, err := s.resolveIdentities(ctx, db, plans, pre)
	if err != nil {
		return nil, err
	}
	var bodies []*Request
	for _, p := range plans {
		if p.req.Body == nil || p.req.Method == http.MethodPatch {
			continue
		}
		from := p.req.Body
		compact, compactID := pre.compacted(p.index)
		if compact != nil {
			// Compacted and checked by precheck: rewritten, it is the
			// checked body, as compacting the rewritten body would be.
			from = compact
		}
		body, err := s.rewriteReferences(ctx, db, from, refs)
		if err != nil {
			if errors.Is(err, errNeedsDB) {
				return nil, err
			}
			return nil, entryError(p.index, err)
		}
		p.req.Body = body
		if rows, ok := pre.rowsFor(p.index, refs); ok {
			if compact != nil {
				p.req.checked, p.req.checkedID, p.req.index = body, compactID, rows
				continue
			}
			checked, id, err := s.readResource(body, p.req.Type, false)
			if err != nil {
				return nil, entryError(p.index, err)
			}
			p.req.checked, p.req.checkedID, p.req.index = checked, id, rows
			continue
		}
		if err := s.checkBody(&p.req, pre == nil || !pre.checked[p.index]); err != nil {
			return nil, entryError(p.index, err)
		}
		bodies = append(bodies, &p.req)
	}
	// One call to the key service for every entry's blind indexes.
	if err := s.blind(ctx, bodies...); err != nil {
		return nil, err
	}
	return plans, nil
}

// resolveIdentities decides, before anything is written, the identity every
// create and conditional update will have, so references between entries
// can be rewritten (R4 3.1.0.11.2). It returns fullUrl -> Type/id. The ids
// of the bodies precheck read (pre, which may be nil) are not read again.
func (s *Server) resolveIdentities(ctx context.Context, tx store.Reader, plans []*planned, pre *prechecked) (map[string]string, error) {
	if err := s.lookupConditionals(ctx, tx, plans); err != nil {
		return nil, err
	}
	refs := map[string]string{}
	targets := map[string]int{}
	for _, p := range plans {
		var id string
		switch {
		case p.req.Method == http.MethodPost && p.req.Header.Get("If-None-Exist") != "":
			existing, err := s.findExisting(ctx, tx, &p.req)
			if err != nil {
				return nil, entryError(p.index, err)
			}
			if existing != nil {
				p.existing = existing
				id = existing.ID
				break
			}
			fallthrough
		case p.req.Method == http.MethodPost:
			id = newID(p.req.Type)
			p.req.assignedID = id
		case p.req.Method == http.MethodPut && p.req.ID == "":
			compact, bodyID := pre.compacted(p.index)
			if compact == nil {
				h, _, _ := resource.ReadHeader(p.req.Body)
				bodyID = h.ID
			}
			target, err := s.conditionalTarget(ctx, tx, &p.req, bodyID)
			if err != nil {
				return nil, entryError(p.index, err)
			}
			id = target
			p.req.assignedID = target
		default:
			id = p.req.ID
		}
		if id == "" || p.req.Method == http.MethodGet || p.req.Method == http.MethodHead {
			continue
		}
		key := p.req.Type + "/" + id
		if prev, dup := targets[key]; dup {
			return nil, outcome.At(outcome.Invalid, "invalid", fmt.Sprintf("Bundle.entry[%d]", p.index),
				"entries %d and %d both change %s; a transaction may touch a resource once", prev, p.index, key)
		}
		targets[key] = p.index
		if p.fullURL != "" {
			refs[p.fullURL] = key
		}
	}
	return refs, nil
}

// lookupConditionals prepares a transaction's conditional updates together:
// it locks all their criteria in one call (in sorted order, so two such
// transactions cannot deadlock on them), and looks up at once those whose
// criteria are a single token with system and code (an identifier, the
// common case), instead of one search per entry.
func (s *Server) lookupConditionals(ctx context.Context, db store.Reader, plans []*planned) error {
	tx, ok := db.(store.Tx)
	if !ok {
		return nil
	}
	// The conditional entries: updates by criteria and creates with
	// If-None-Exist.
	type cond struct {
		p      *planned
		key    string
		token  store.TokenMatch
		simple bool
	}
	var conds []*cond
	for _, p := range plans {
		var q url.Values
		switch {
		case p.req.Method == http.MethodPut && p.req.ID == "" && p.req.assignedID == "" && p.route.level == typeLevel:
			q = p.req.Query
		case p.req.Method == http.MethodPost && p.req.Header.Get("If-None-Exist") != "":
			var err error
			if q, err = conditionQuery(p.req.Type, p.req.Header.Get("If-None-Exist")); err != nil {
				continue // findExisting reports it
			}
		default:
			continue
		}
		c := &cond{p: p, key: criteriaKey(p.req.Type, q)}
		c.token, c.simple = s.tokenCriterion(ctx, p.req.Type, q)
		conds = append(conds, c)
	}
	if len(conds) == 0 {
		return nil
	}
	lookup := func(cs []*cond) error {
		var batch []store.TokenMatch
		for _, c := range cs {
			batch = append(batch, c.token)
		}
		found, err := tx.MatchTokens(ctx, batch)
		if err != nil {
			return err
		}
		for i, c := range cs {
			c.p.req.matched, c.p.req.matchedSet = found[i], true
		}
		return nil
	}
	// Criteria that already match need no lock: the resource exists, and
	// what a conditional entry does with it is serialised by its row lock.
	// Only criteria that match nothing (and so would create) are locked,
	// all in one sorted call, so that transactions sharing them cannot
	// deadlock, and then looked up again under the lock, unless the
	// transaction is serialised already (SQLite): then no other writer
	// can have changed what the first lookup found.
	var simple []*cond
	for _, c := range conds {
		if c.simple {
			simple = append(simple, c)
		}
	}
	if len(simple) > 0 {
		if err := lookup(simple); err != nil {
			return err
		}
	}
	var keys []string
	var again []*cond
	for _, c := range conds {
		// Locked here or needing no lock: the entry must not lock again
		// (one lock out of order is a deadlock with another transaction).
		c.p.req.criteriaLocked = true
		if c.simple && len(c.p.req.matched) > 0 {
			continue
		}
		keys = append(keys, c.key)
		if c.simple {
			again = append(again, c)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if err := tx.LockCriteria(ctx, keys...); err != nil {
		return err
	}
	if len(again) > 0 && !tx.Serialized() {
		return lookup(again)
	}
	return nil
}

// tokenCriterion reads criteria that are exactly one token parameter with
// a system and a code and nothing else ("identifier=system|value"), with
// the value in index form. Anything else is left to matchQuery.
func (s *Server) tokenCriterion(ctx context.Context, typ string, q url.Values) (store.TokenMatch, bool) {
	sq, err := s.parseSearch(ctx, typ, q, true)
	if err != nil || len(sq.Where) != 1 {
		return store.TokenMatch{}, false
	}
	c := sq.Where[0]
	if c.Type != "token" || c.Modifier != "" || c.Missing != nil || c.Next != nil || len(c.Values) != 1 || strings.HasPrefix(c.Code, "_") || len(c.IndexParams()) != 1 {
		return store.TokenMatch{}, false
	}
	v := c.Values[0]
	if !v.HasSystem || v.System == "" || v.Code == "" || v.Text != "" || v.Second != nil {
		return store.TokenMatch{}, false
	}
	return store.TokenMatch{Type: typ, Param: c.Code, System: v.System, Code: v.Code}, true
}

// rewriteReferences points references at the identities the transaction
// assigned (urn:uuid and absolute fullUrls) and resolves conditional
// references ("Patient?identifier=...") to the single resource they match.
func (s *Server) rewriteReferences(ctx context.Context, tx store.Reader, body []byte, refs map[string]string) ([]byte, error) {
	var failed error
	out, err := resource.RewriteReferences(body, func(ref string) (string, bool) {
		if failed != nil {
			return "", false
		}
		if to, ok := refs[ref]; ok {
			return to, true
		}
		if strings.HasPrefix(ref, "urn:uuid:") || strings.HasPrefix(ref, "urn:oid:") {
			failed = outcome.New(outcome.Invalid, "reference %q names no entry of this transaction", ref)
			return "", false
		}
		typ, query, ok := strings.Cut(ref, "?")
		if !ok || strings.Contains(typ, "/") {
			return "", false
		}
		if tx == nil {
			failed = errNeedsDB
			return "", false
		}
		q, err := url.ParseQuery(query)
		if err != nil {
			failed = outcome.New(outcome.Invalid, "conditional reference %q has a bad query: %v", ref, err)
			return "", false
		}
		ids, err := s.matchQuery(ctx, tx, typ, q, 2)
		if err != nil {
			failed = err
			return "", false
		}
		if len(ids) != 1 {
			failed = outcome.New(outcome.PreconditionFailed, "conditional reference %q matches %d resources; it must match exactly one", ref, len(ids))
			return "", false
		}
		// Later entries, and their prechecked index rows, use it too.
		refs[ref] = typ + "/" + ids[0]
		return refs[ref], true
	})
	if failed != nil {
		return nil, failed
	}
	if err != nil {
		return nil, outcome.New(outcome.Invalid, "%v", err)
	}
	return out, nil
}

// runEntry runs one planned entry inside tx.
func (s *Server) runEntry(ctx context.Context, tx store.Tx, p *planned) (*Response, error) {
	if p.existing != nil {
		// A conditional create that matched: nothing is written.
		return &Response{Status: http.StatusOK, Resource: p.existing, Unchanged: true}, nil
	}
	var resp *Response
	var err error
	if p.route.read != nil {
		resp, err = p.route.read(s, ctx, tx, &p.req)
	} else {
		resp, err = p.route.write(s, ctx, tx, &p.req)
	}
	return resp, storeError(err)
}

// batch processes each entry on its own (R4 3.1.0.11.1): one entry's
// failure is reported in its response and does not affect the others.
func (s *Server) batch(ctx context.Context, r *Request, b inBundle) (*Response, error) {
	out := make([]bundleEntry, len(b.Entry))
	for i, e := range b.Entry {
		p, err := s.plan(r, i, e)
		var resp *Response
		if err == nil {
			resp, err = s.run(ctx, p.route, &p.req)
		}
		if err != nil {
			oe := outcome.As(err)
			out[i] = bundleEntry{Response: &entryResponse{Status: statusText(outcome.Status(oe)), Outcome: outcome.Resource(oe)}}
			if outcome.Status(oe) >= 500 {
				s.log.ErrorContext(ctx, "batch entry failed", "entry", i, "error", err)
			}
			continue
		}
		out[i] = responseEntry(r.Base, &p.req, resp)
	}
	return &Response{Status: http.StatusOK, Body: (&bundle{ResourceType: "Bundle", ID: uuid.NewString(), Type: "batch-response", Entry: out}).bytes()}, nil
}

// responseEntry renders an interaction's response as a response Bundle
// entry, honouring Prefer for the resource it carries.
func responseEntry(base string, req *Request, resp *Response) bundleEntry {
	e := bundleEntry{Response: &entryResponse{Status: statusText(resp.Status)}}
	res := resp.Resource
	if res != nil {
		e.Response.Etag = etag(res)
		e.Response.LastModified = resource.Instant(res.LastUpdated)
		if resp.Status == http.StatusCreated || resp.Location {
			e.Response.Location = versionedPath(res)
		}
		if !res.Deleted {
			e.FullURL = base + "/" + res.Type + "/" + res.ID
		}
	}
	body := resp.Body
	if body == nil && res != nil && !res.Deleted {
		body = res.Body
	}
	if req != nil && isWrite(req.Method) {
		switch preferReturn(req.Header) {
		case "minimal":
			body = nil
		case "OperationOutcome":
			body = nil
			e.Response.Outcome = resp.Outcome
		}
	}
	if resp.Status != http.StatusNotModified {
		e.Resource = body
	}
	return e
}
