package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/promsgateway/gateway/fhir/search"
	"github.com/promsgateway/gateway/fhir/store"
)

// query accumulates SQL text and its arguments in order.
type query struct {
	b    strings.Builder
	args []any
}

func (q *query) add(sql string, args ...any) {
	q.b.WriteString(sql)
	q.args = append(q.args, args...)
}

// Search implements store.Reader. On PostgreSQL a search whose SQL fixes
// its plan (planIsFixed) runs on the pool that keeps one generic plan per
// statement; the others on the pool that plans each with its values. On
// SQLite the pools are one. A search's includes are read under the same
// admission: read outside it, they queued for a connection on the pool
// that serves reads and writes, whose waiters database/sql serves in
// random order.
func (s *Store) Search(ctx context.Context, q *search.Query) (*store.SearchResult, error) {
	from, gate := valuePlanPool, s.searchGate
	if planIsFixed(q) {
		from, gate = fixedPlanPool, s.fixedGate
	}
	select {
	case gate <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-gate }()
	if s.admitted != nil {
		s.admitted(ctx)
	}
	return reader{s: s, from: from}.Search(ctx, q)
}

// planIsFixed reports that the SQL of q leaves the planner no choice that
// its values could make wrong, so that a cached generic plan is as good as
// one planned with the values, without a millisecond of planning per
// search: a reference or identifier equality drives it (a few index rows,
// read by the index by value), and every other clause is a token,
// reference, uri, date, number or quantity probe on the candidates, which
// can only read the candidate's rows by the index by resource (see exists
// in clauseAt; the indexes are in dialect.go). Chains, _has, sorting,
// compartments and searches without such a driver are planned with their
// values.
func planIsFixed(q *search.Query) bool {
	i := driver(q)
	if i < 0 || driverRank(q.Where[i]) < 4 || len(q.Sort) > 0 || q.Compartment != nil || q.Since != 0 {
		return false
	}
	for _, c := range q.Where {
		if c.Next != nil || c.HasType != "" {
			return false
		}
		switch c.Type {
		case "token", "reference", "uri", "date", "number", "quantity":
		default:
			return false
		}
	}
	return true
}

// versionJoin joins each candidate's current version row. A search's FROM
// has it only when a clause or sort key reads last_updated: the page is
// chosen without it (see searchSQL) and its bodies are read after, so a
// candidate that fails a clause never has its body read.
const versionJoin = ` JOIN resource_version v ON v.type = c.type AND v.id = c.id AND v.version = c.version`

// readsLastUpdated says whether sq's statements compare or sort by the
// current version's last_updated, which needs versionJoin.
func readsLastUpdated(sq *search.Query) bool {
	if sq.Since != 0 {
		return true
	}
	for _, k := range sq.Sort {
		if k.Code == "_lastUpdated" {
			return true
		}
	}
	for _, c := range sq.Where {
		if c.Code == "_lastUpdated" {
			return true
		}
	}
	return false
}

// MatchTokens implements store.Reader.
func (s *Store) MatchTokens(ctx context.Context, criteria []store.TokenMatch) ([][]string, error) {
	return s.reader().MatchTokens(ctx, criteria)
}

// MatchTokens implements store.Reader with one query for all criteria.
func (r reader) MatchTokens(ctx context.Context, criteria []store.TokenMatch) ([][]string, error) {
	out := make([][]string, len(criteria))
	const chunk = 200 // 4 parameters each, well inside both engines' limits
	for start := 0; start < len(criteria); start += chunk {
		part := criteria[start:min(start+chunk, len(criteria))]
		var q query
		q.add("WITH m (n, t, p, sy, v) AS (VALUES ")
		for i, c := range part {
			if i > 0 {
				q.add(", ")
			}
			// n is an index into part, written as a literal: it is ours.
			q.add(fmt.Sprintf("(%d, ?, ?, ?, ?)", i), c.Type, c.Param, c.System, c.Code)
		}
		if r.s.d.name != "postgres" {
			q.add(`) SELECT DISTINCT m.n, s.res_id FROM m JOIN search_index s ON s.res_type = m.t AND s.param = m.p AND s.val = m.v AND s.sys = m.sy
				JOIN resource_current c ON c.type = s.res_type AND c.id = s.res_id WHERE c.deleted = 0 AND c.version > 0 ORDER BY m.n, s.res_id`)
		} else {
			// LATERAL makes every plan, generic ones included, an index lookup
			// per criterion (a cached generic plan of the plain join hashed the
			// whole index: 20-50 ms per transaction).
			q.add(`) SELECT m.n, x.res_id FROM m CROSS JOIN LATERAL (SELECT DISTINCT s.res_id FROM search_index s
			JOIN resource_current c ON c.type = s.res_type AND c.id = s.res_id
			WHERE s.res_type = m.t AND s.param = m.p AND s.val = m.v AND s.sys = m.sy AND c.deleted = 0 AND c.version > 0) x
			ORDER BY m.n, x.res_id`)
		}
		rows, err := r.query(ctx, q.b.String(), q.args...)
		if err != nil {
			return nil, fmt.Errorf("match tokens: %w", err)
		}
		for rows.Next() {
			var n int
			var id string
			if err := rows.Scan(&n, &id); err != nil {
				rows.Close()
				return nil, err
			}
			out[start+n] = append(out[start+n], id)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r reader) Search(ctx context.Context, sq *search.Query) (*store.SearchResult, error) {
	if err := sq.Unblinded(); err != nil {
		return nil, err
	}
	ss := searchFromWhere(sq)
	res := &store.SearchResult{Total: -1}
	// countAll runs the COUNT query. A first page that holds every match
	// already knows the total, so that query runs only when the page does
	// not (more pages follow, a later page, or a count alone).
	countAll := func() error {
		var count query
		count.add("SELECT COUNT(*)")
		count.add(ss.from.b.String(), ss.from.args...)
		count.add(ss.where.b.String(), ss.where.args...)
		if err := r.queryRow(ctx, count.b.String(), count.args...).Scan(&res.Total); err != nil {
			return fmt.Errorf("search count: %w", err)
		}
		return nil
	}
	if sq.Count == 0 {
		if sq.Total != "none" {
			if err := countAll(); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
	keys := sortKeys(sq)
	sel, err := selectStatement(r.s.d, sq, ss, keys)
	if err != nil {
		return nil, err
	}
	fused := fusedIncludes(sq)
	if len(fused) > 0 {
		sel = r.s.d.withIncludes(sel, sq, keys, fused)
	}
	rows, err := r.query(ctx, sel.b.String(), sel.args...)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	type found struct {
		res  *store.Resource
		body []byte
		keys []any
	}
	var got, included []found
	for rows.Next() {
		kv := make([]any, len(keys))
		ptrs := make([]any, len(keys), len(keys)+1)
		for i := range kv {
			ptrs[i] = &kv[i]
		}
		var part int
		if len(fused) > 0 {
			ptrs = append(ptrs, &part)
		}
		res, body, err := scanVersion(rows, ptrs...)
		if err != nil {
			return nil, err
		}
		if part == 0 {
			got = append(got, found{res, body, kv})
		} else {
			included = append(included, found{res, body, nil})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	switch {
	case sq.Total == "none":
	case sq.Cursor == nil && len(got) <= sq.Count:
		res.Total = len(got)
	default:
		if err := countAll(); err != nil {
			return nil, err
		}
	}
	if len(got) > sq.Count {
		last := got[sq.Count-1]
		res.Next = &search.Cursor{Keys: normaliseKeys(last.keys), ID: last.res.ID}
		got = got[:sq.Count]
	}
	for _, g := range got {
		if err := r.open(ctx, g.res, g.body); err != nil {
			return nil, err
		}
		res.Matches = append(res.Matches, g.res)
	}
	// The fused includes' targets; include leaves out those on the page.
	var first []*store.Resource
	for _, g := range included {
		if err := r.open(ctx, g.res, g.body); err != nil {
			return nil, err
		}
		first = append(first, g.res)
	}
	if len(sq.Include)+len(sq.RevInclude) > 0 && len(res.Matches) > 0 {
		// Includes keep generic plans whichever pool the page came from:
		// their SQL fixes the plan (index lookups by the resources' ids),
		// and planning it with its values took PostgreSQL 0.7 ms, more
		// than running it (pgbench: 1,650 includes/s planned each time,
		// 4,190/s with the generic plan). Both gates together never hold
		// more searches than that pool has connections.
		inc := r
		inc.from = fixedPlanPool
		if res.Included, err = inc.include(ctx, sq, res.Matches, fused, first); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// searchSQL is the FROM and WHERE of a search's statements. In both, c is
// a candidate with its type and id. When current is true c is the
// candidate's resource_current row; when it is false c is a distinct
// (type, id) of the driving clause's index rows, which are rows of current,
// live versions only (a write replaces a resource's rows and a delete
// removes them), so a search driven by a clause reads the newest versions
// of its page's rows alone, without resource_current (newestVersion).
type searchSQL struct {
	from, where *query
	current     bool
}

// searchFromWhere renders the FROM and WHERE parts of sq's statements.
func searchFromWhere(sq *search.Query) searchSQL {
	from, where := &query{}, &query{}
	i := driver(sq)
	// The version row is read before the page only for last_updated.
	join := ""
	if readsLastUpdated(sq) {
		join = versionJoin
	}
	indexOnly := i >= 0 && join == ""
	switch {
	case indexOnly:
		where.add(` WHERE c.type = ?`, sq.Type)
	case sq.Type != "":
		where.add(` WHERE c.deleted = 0 AND c.version > 0 AND c.type = ?`, sq.Type)
	case len(sq.Types) > 0:
		types := make([]any, len(sq.Types))
		for i, t := range sq.Types {
			types[i] = t
		}
		where.add(` WHERE c.deleted = 0 AND c.version > 0 AND c.type IN (`+placeholders(len(types))+")", types...)
	default:
		where.add(` WHERE c.deleted = 0 AND c.version > 0`)
	}
	if sq.Compartment != nil {
		// The patient itself, and what its compartment's parameters link to it.
		// Row-value IN keeps this an uncorrelated lookup on the index.
		where.add(` AND ((c.type = 'Patient' AND c.id = ?) OR (c.type, c.id) IN (SELECT s.res_type, s.res_id FROM search_index s
			WHERE s.param = '_compartment' AND s.val = ?))`,
			sq.Compartment.PatientID, sq.Compartment.PatientID)
	}
	if sq.Since != 0 {
		where.add(" AND v.last_updated >= ?", sq.Since)
	}
	from.add(" FROM resource_current c" + join)
	clauses := sq.Where
	correlatedType := sq.Type
	if i >= 0 {
		// Start from the index rows of the most selective clause and check
		// the others on each candidate, instead of materialising every
		// clause's matches.
		c := sq.Where[i]
		from = &query{}
		from.add(" FROM (SELECT DISTINCT s.res_type AS type, s.res_id AS id FROM search_index s WHERE s.res_type = ? AND ", sq.Type)
		paramCondition(from, c)
		from.add(" AND (")
		for j, v := range c.Values {
			if j > 0 {
				from.add(" OR ")
			}
			valueCondition(from, c, v)
		}
		if indexOnly {
			from.add(")) c")
		} else {
			from.add(")) d JOIN resource_current c ON c.type = ? AND c.id = d.id"+join, sq.Type)
		}
		clauses = append(append([]search.Clause{}, sq.Where[:i]...), sq.Where[i+1:]...)
		correlatedType = ""
	}
	for _, c := range clauses {
		where.add(" AND ")
		clause(where, c, 0, correlatedType)
	}
	return searchSQL{from: from, where: where, current: !indexOnly}
}

// selectStatement renders the statement that reads a page of sq's
// matches with their sort keys, one row more than the page. The page is
// chosen first, from the candidates, the index and the sort keys, and only
// its rows are joined to their current versions for the bodies.
func selectStatement(d dialect, sq *search.Query, ss searchSQL, keys []sortKey) (*query, error) {
	sel := &query{}
	sel.add(`SELECT ` + versionColumns)
	for i := range keys {
		sel.add(fmt.Sprintf(", m.k%d", i))
	}
	sel.add(" FROM (SELECT c.type AS t, c.id AS i")
	if ss.current {
		sel.add(", c.version AS n")
	}
	for i, k := range keys {
		sel.add(", ")
		sel.add(k.sql, k.args...)
		sel.add(fmt.Sprintf(" AS k%d", i))
	}
	sel.add(ss.from.b.String(), ss.from.args...)
	sel.add(ss.where.b.String(), ss.where.args...)
	if sq.Cursor != nil {
		if len(sq.Cursor.Keys) != len(keys) {
			return nil, store.ErrBadCursor
		}
		sel.add(" AND ")
		if err := keyset(sel, keys, sq.Cursor); err != nil {
			return nil, err
		}
	}
	sep := func(k sortKey) string {
		if k.desc {
			return " DESC, "
		}
		return ", "
	}
	sel.add(" ORDER BY ")
	for _, k := range keys {
		sel.add(k.sql, k.args...)
		sel.add(sep(k))
	}
	sel.add("c.id LIMIT ?) m", sq.Count+1)
	if ss.current {
		sel.add(" JOIN resource_version v ON v.type = m.t AND v.id = m.i AND v.version = m.n")
	} else {
		// Candidates from index rows: their newest version is current and
		// live (see newestVersion).
		sel.add(d.newestVersion("m.t", "m.i"))
	}
	sel.add(" ORDER BY ")
	for i, k := range keys {
		sel.add(fmt.Sprintf("m.k%d", i) + sep(k))
	}
	sel.add("m.i")
	return sel, nil
}

// driver picks the clause to drive a search from: an equality on a
// reference, an identifier-like token or _id is far more selective than a
// date range, a string prefix or a negation. -1 means none fits.
func driver(sq *search.Query) int {
	if sq.Type == "" {
		return -1
	}
	best, bestRank := -1, 0
	for i, c := range sq.Where {
		if rank := driverRank(c); rank > bestRank {
			best, bestRank = i, rank
		}
	}
	return best
}

// driverRank is how selective clause c is expected to be as a driver: 4
// for a reference or identifier equality, 2 for another equality, 0 for a
// clause that cannot drive.
func driverRank(c search.Clause) int {
	if c.Next != nil || c.Missing != nil || c.Modifier == "not" || c.Code == "_id" || c.Code == "_lastUpdated" {
		return 0
	}
	switch {
	case c.Type == "reference" && c.Modifier == "":
		return 4
	case c.Type == "token" && c.Modifier == "" && (c.Code == "identifier" || strings.HasSuffix(c.Code, "identifier")):
		return 4
	case c.Type == "token" && c.Modifier == "":
		return 2
	case c.Type == "string" && (c.Modifier == "exact" || c.BlindIndexed()):
		return 2
	case c.Type == "uri" && c.Modifier == "":
		return 2
	}
	return 0
}

// normaliseKeys makes scanned key values JSON-stable.
func normaliseKeys(kv []any) []any {
	out := make([]any, len(kv))
	for i, v := range kv {
		if b, ok := v.([]byte); ok {
			v = string(b)
		}
		out[i] = v
	}
	return out
}

// sortKey is an ORDER BY expression; nulls (no value) sort last through a
// sentinel so that keyset paging can compare every row.
type sortKey struct {
	sql  string
	args []any
	desc bool
	kind string // text, int, float
}

func sortKeys(q *search.Query) []sortKey {
	var keys []sortKey
	for _, k := range q.Sort {
		var sk sortKey
		sk.desc = k.Desc
		switch {
		case k.Code == "_id":
			sk.sql, sk.kind = "c.id", "text"
		case k.Code == "_type":
			sk.sql, sk.kind = "c.type", "text"
		case k.Code == "_lastUpdated":
			sk.sql, sk.kind = "v.last_updated", "int"
		default:
			agg, col, kind := "MIN", "s.val", "text"
			switch k.Type {
			case "date":
				col, kind = "s.dlow", "int"
				if k.Desc {
					col = "s.dhigh"
				}
			case "number", "quantity":
				col, kind = "s.nlow", "float"
				if k.Desc {
					col = "s.nhigh"
				}
			}
			if k.Desc {
				agg = "MAX"
			}
			sentinel := map[string]string{"text": "'\U0010FFFF'", "int": "9223372036854775807", "float": "1e308"}[kind]
			if k.Desc {
				sentinel = map[string]string{"text": "''", "int": "-9223372036854775807", "float": "-1e308"}[kind]
			}
			var cond query
			paramsCondition(&cond, search.IndexParams(q.Type, k.Code))
			sk.sql = fmt.Sprintf("COALESCE((SELECT %s(%s) FROM search_index s WHERE s.res_type = c.type AND s.res_id = c.id AND %s), %s)", agg, col, cond.b.String(), sentinel)
			sk.args, sk.kind = cond.args, kind
		}
		keys = append(keys, sk)
	}
	return keys
}

// keyset adds the condition "after the cursor" in sort order, the id
// breaking ties.
func keyset(q *query, keys []sortKey, c *search.Cursor) error {
	values := make([]any, len(keys))
	for i, k := range keys {
		v, err := cursorValue(c.Keys[i], k.kind)
		if err != nil {
			return err
		}
		values[i] = v
	}
	var rec func(i int)
	rec = func(i int) {
		if i == len(keys) {
			q.add("c.id > ?", c.ID)
			return
		}
		k := keys[i]
		v := values[i]
		op := ">"
		if k.desc {
			op = "<"
		}
		q.add("(")
		q.add(k.sql, k.args...)
		q.add(" "+op+" ?", v)
		q.add(" OR (")
		q.add(k.sql, k.args...)
		q.add(" = ?", v)
		q.add(" AND ")
		rec(i + 1)
		q.add("))")
	}
	q.add("(")
	rec(0)
	q.add(")")
	return nil
}

// cursorValue reads a cursor key as the sort key's kind; a value of the
// wrong kind is a cursor that was not made for this search.
func cursorValue(v any, kind string) (any, error) {
	if n, ok := v.(json.Number); ok {
		switch kind {
		case "int":
			i, err := n.Int64()
			if err == nil {
				return i, nil
			}
		case "float":
			f, err := n.Float64()
			if err == nil {
				return f, nil
			}
		}
		return nil, store.ErrBadCursor
	}
	switch x := v.(type) {
	case int64:
		if kind == "int" {
			return x, nil
		}
		if kind == "float" {
			return float64(x), nil
		}
	case float64:
		if kind == "float" {
			return x, nil
		}
	case string:
		if kind == "text" {
			return x, nil
		}
	case []byte:
		if kind == "text" {
			return string(x), nil
		}
	}
	return nil, store.ErrBadCursor
}

var (
	resourceAlias = regexp.MustCompile(`\bc\.`)
	indexAlias    = regexp.MustCompile(`\bs\.`)
	indexTable    = regexp.MustCompile(`search_index s `)
)

// clause renders one search clause as a condition on the resource_current
// row c (and, at the top, its current version v). Nested clauses of chains
// and _has are written with c and s too and renamed to c1, s1, c2, ... by
// depth, so one set of rules serves every level.
func clause(q *query, c search.Clause, depth int, typ string) {
	if depth == 0 {
		clauseAt(q, c, depth, typ)
		return
	}
	var inner query
	clauseAt(&inner, c, depth, typ)
	text := resourceAlias.ReplaceAllString(inner.b.String(), fmt.Sprintf("c%d.", depth))
	text = indexAlias.ReplaceAllString(text, fmt.Sprintf("s%d.", depth))
	text = indexTable.ReplaceAllString(text, fmt.Sprintf("search_index s%d ", depth))
	q.add(text, inner.args...)
}

// clauseAt renders c on alias c; typ, when known, is c's resource type.
func clauseAt(q *query, c search.Clause, depth int, typ string) {
	if c.Next != nil {
		// The nested clause is on the resource at the other end, one level
		// deeper; its aliases are c<depth+1>.
		next := fmt.Sprintf("c%d", depth+1)
		if c.HasType != "" {
			// _has: resources of HasType whose Code points at c and that
			// meet Next.
			q.add("EXISTS (SELECT 1 FROM search_index s JOIN resource_current "+next+" ON "+next+".type = s.res_type AND "+next+".id = s.res_id AND "+next+".deleted = 0"+
				" WHERE s.res_type = ? AND s.param = ? AND s.sys = c.type AND s.val = c.id AND s.raw <> '#identifier' AND ", c.HasType, c.Code)
		} else {
			// chain: c's reference Code points at a resource that meets Next.
			targets := make([]any, len(c.Targets))
			for i, t := range c.Targets {
				targets[i] = t
			}
			q.add("EXISTS (SELECT 1 FROM search_index s JOIN resource_current "+next+" ON "+next+".type = s.sys AND "+next+".id = s.val AND "+next+".deleted = 0"+
				" WHERE s.res_type = c.type AND s.res_id = c.id AND s.param = ? AND s.raw <> '#identifier' AND s.sys IN ("+placeholders(len(targets))+") AND ", append([]any{c.Code}, targets...)...)
		}
		nextType := c.HasType
		if len(c.Targets) == 1 {
			nextType = c.Targets[0]
		}
		clause(q, *c.Next, depth+1, nextType)
		q.add(")")
		return
	}
	if c.Code == "_id" {
		ids := make([]any, 0, len(c.Values))
		for _, v := range c.Values {
			ids = append(ids, v.Code)
		}
		if c.Missing != nil {
			q.add(map[bool]string{true: "1 = 0", false: "1 = 1"}[*c.Missing])
			return
		}
		neg := ""
		if c.Modifier == "not" {
			neg = "NOT "
		}
		q.add("c.id "+neg+"IN ("+placeholders(len(ids))+")", ids...)
		return
	}
	if c.Code == "_lastUpdated" {
		col := "v.last_updated"
		if depth > 0 {
			col = "(SELECT vv.last_updated FROM resource_version vv WHERE vv.type = c.type AND vv.id = c.id AND vv.version = c.version)"
		}
		q.add("(")
		for i, v := range c.Values {
			if i > 0 {
				q.add(" OR ")
			}
			dateCondition(q, col, "("+col+" + 1)", v)
		}
		q.add(")")
		return
	}
	exists := func(neg bool, match func(*query)) {
		suffix := ")"
		switch {
		case depth == 0 && typ != "":
			// Uncorrelated at the top: the planner reads the matching index
			// rows once instead of probing them for every resource of the type.
			if neg {
				q.add("c.id NOT IN (SELECT s.res_id FROM search_index s WHERE s.res_type = ? AND ", typ)
			} else {
				q.add("c.id IN (SELECT s.res_id FROM search_index s WHERE s.res_type = ? AND ", typ)
			}
			paramCondition(q, c)
		case depth == 0:
			// A probe per candidate (the candidates come from the driving
			// clause). Written as a scalar subquery so that PostgreSQL cannot
			// turn it into a semi-join over every matching index row, which
			// a generic plan's estimates made it do: 200,000 rows hashed for
			// a common code, seconds per search. Its values are compared
			// below as expressions, for the same reason.
			q.add("(SELECT 1 FROM search_index s WHERE s.res_type = c.type AND s.res_id = c.id AND ")
			paramCondition(q, c)
			suffix = " LIMIT 1) IS NOT NULL"
			if neg {
				suffix = " LIMIT 1) IS NULL"
			}
		default:
			if neg {
				q.add("NOT ")
			}
			q.add("EXISTS (SELECT 1 FROM search_index s WHERE s.res_type = c.type AND s.res_id = c.id AND ")
			paramCondition(q, c)
		}
		if match != nil {
			q.add(" AND (")
			if depth == 0 && typ == "" {
				// A probe reads the candidate's rows by the index by resource
				// (res_type, res_id and param): its value and system are compared
				// as expressions, which no index can serve, so that no plan (a
				// generic one least of all, which takes every value for a rare
				// one) reads the rows of the value by the index by value
				// instead, 200,000 of them for a common code. (Adding res_id
				// to the key of the index by value would serve the probe too,
				// but that index would then serve it for any value, rare or
				// common, at the generic plan's choice.)
				var m query
				match(&m)
				q.add(probeExpressions(m.b.String()), m.args...)
			} else {
				match(q)
			}
			q.add(")")
		}
		q.add(suffix)
	}
	if c.Missing != nil {
		exists(*c.Missing, nil)
		return
	}
	exists(c.Modifier == "not", func(q *query) {
		for i, v := range c.Values {
			if i > 0 {
				q.add(" OR ")
			}
			valueCondition(q, c, v)
		}
	})
}

// probeExpressions returns sql with each of the index columns s.val and
// s.sys, as whole words, written as an expression (the column joined to
// the empty string), which a probe compares instead of the column (see
// clause). A scan, not a regular expression: it runs for every probe of
// every search, and the regular expression took 3.5% of the gateway's CPU
// on a code and date search.
func probeExpressions(sql string) string {
	word := func(b byte) bool {
		return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
	}
	var b strings.Builder
	b.Grow(len(sql) + 32)
	last := 0
	for i := 0; i+5 <= len(sql); i++ {
		if sql[i] != 's' || sql[i+1] != '.' || (i > 0 && word(sql[i-1])) {
			continue
		}
		if col := sql[i+2 : i+5]; (col == "val" || col == "sys") && (i+5 == len(sql) || !word(sql[i+5])) {
			b.WriteString(sql[last:i])
			b.WriteString("(s." + col + " || '')")
			last = i + 5
			i += 4
		}
	}
	if last == 0 {
		return sql
	}
	b.WriteString(sql[last:])
	return b.String()
}

// paramCondition limits index rows s to the parameters of clause c.
func paramCondition(q *query, c search.Clause) {
	paramsCondition(q, c.IndexParams())
}

// paramsCondition limits index rows s to params.
func paramsCondition(q *query, params []string) {
	if len(params) == 1 {
		q.add("s.param = ?", params[0])
		return
	}
	args := make([]any, len(params))
	for i, p := range params {
		args[i] = p
	}
	q.add("s.param IN ("+placeholders(len(args))+")", args...)
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// likeEscape escapes LIKE wildcards in s for ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func valueCondition(q *query, c search.Clause, v search.Value) {
	switch c.Type {
	case "string":
		switch {
		case c.BlindIndexed() && v.Param != "":
			// A digest in the domain of one of the clause's parameters.
			col := "s.val"
			if c.Modifier == "exact" {
				col = "s.raw"
			}
			q.add("(s.param = ? AND "+col+" = ?)", v.Param, v.Text)
		case c.BlindIndexed() && c.Modifier == "exact":
			q.add("s.raw = ?", v.Text)
		case c.BlindIndexed():
			// The digest of the search string's prefix kind (search.BlindRows).
			q.add("s.val = ?", v.Text)
		case c.Modifier == "exact":
			q.add("s.raw = ?", v.Text)
		case c.Modifier == "contains":
			q.add(`s.val LIKE ? ESCAPE '\'`, "%"+likeEscape(search.Normalize(v.Text))+"%")
		default:
			q.add(`s.val LIKE ? ESCAPE '\'`, likeEscape(search.Normalize(v.Text))+"%")
		}
	case "token":
		switch {
		case v.Text == "#of-type":
			q.add("(s.raw = '#of-type' AND s.sys = ? AND s.val = ?)", v.System, v.Code)
		case c.Modifier == "text":
			q.add(`s.raw LIKE ? ESCAPE '\'`, likeEscape(search.Normalize(v.Text))+"%")
		case v.HasSystem && v.Code == "":
			q.add("s.sys = ?", v.System)
		case v.HasSystem:
			q.add("(s.sys = ? AND s.val = ?)", v.System, v.Code)
		default:
			q.add("s.val = ?", v.Code)
		}
	case "reference":
		switch {
		case c.Modifier == "identifier":
			if v.HasSystem {
				q.add("(s.raw = '#identifier' AND s.sys = ? AND s.val = ?)", v.System, v.Code)
			} else {
				q.add("(s.raw = '#identifier' AND s.val = ?)", v.Code)
			}
		case v.Text != "":
			q.add("(s.raw = ?", v.Text)
			if v.RefType != "" {
				q.add(" OR (s.sys = ? AND s.val = ?)", v.RefType, v.RefID)
			}
			q.add(")")
		case v.RefType != "":
			q.add("(s.sys = ? AND s.val = ? AND s.raw <> '#identifier')", v.RefType, v.RefID)
		default:
			q.add("(s.val = ? AND s.raw <> '#identifier')", v.RefID)
		}
	case "uri":
		switch c.Modifier {
		case "below":
			q.add(`s.val LIKE ? ESCAPE '\'`, likeEscape(v.Text)+"%")
		case "above":
			q.add("? LIKE (s.val || '%')", v.Text)
		default:
			q.add("s.val = ?", v.Text)
		}
	case "date":
		if c.BlindIndexed() {
			q.add("s.val = ?", v.Text)
			return
		}
		dateCondition(q, "s.dlow", "s.dhigh", v)
	case "number":
		numberCondition(q, v)
	case "quantity":
		q.add("(")
		numberCondition(q, v)
		switch {
		case v.HasSystem:
			q.add(" AND s.sys = ? AND s.val = ?", v.System, v.Code)
		case v.Code != "":
			q.add(" AND (s.val = ? OR s.raw = ?)", v.Code, v.Code)
		}
		q.add(")")
	case "composite":
		q.add("(")
		valueCondition(q, search.Clause{Type: "token"}, v)
		if sv := v.Second; sv != nil {
			q.add(" AND ")
			switch v.SecondType {
			case "quantity", "number":
				numberCondition(q, *sv)
				if sv.HasSystem {
					q.add(" AND s.raw = ?", sv.System+"|"+sv.Code)
				} else if sv.Code != "" {
					q.add(` AND s.raw LIKE ? ESCAPE '\'`, "%|"+likeEscape(sv.Code))
				}
			case "date":
				dateCondition(q, "s.dlow", "s.dhigh", *sv)
			case "token":
				switch {
				case sv.HasSystem && sv.Code == "":
					q.add(`s.raw LIKE ? ESCAPE '\'`, likeEscape(sv.System)+"|%")
				case sv.HasSystem:
					q.add("s.raw = ?", sv.System+"|"+sv.Code)
				default:
					q.add(` s.raw LIKE ? ESCAPE '\'`, "%|"+likeEscape(sv.Code))
				}
			default:
				q.add(` s.raw LIKE ? ESCAPE '\'`, likeEscape(search.Normalize(sv.Text))+"%")
			}
		}
		q.add(")")
	default:
		q.add("1 = 0")
	}
}

// dateCondition compares a stored range [lo, hi) with the search value's
// range [L, H) for each prefix (R4 3.1.1.4.2).
func dateCondition(q *query, lo, hi string, v search.Value) {
	L, H := v.DLow, v.DHigh
	switch v.Prefix {
	case "ne":
		q.add("NOT ("+lo+" >= ? AND "+hi+" <= ?)", L, H)
	case "gt":
		q.add(hi+" > ?", H)
	case "lt":
		q.add(lo+" < ?", L)
	case "ge":
		q.add("("+hi+" > ? OR ("+lo+" >= ? AND "+hi+" <= ?))", H, L, H)
	case "le":
		q.add("("+lo+" < ? OR ("+lo+" >= ? AND "+hi+" <= ?))", L, L, H)
	case "sa":
		q.add(lo+" >= ?", H)
	case "eb":
		q.add(hi+" <= ?", L)
	case "ap":
		// Approximately: within 10% of the distance from now, at least a day.
		now := search.Now().UnixMicro()
		delta := int64(math.Abs(float64(now-L)) * 0.1)
		delta = max(delta, 86_400_000_000)
		q.add("("+lo+" < ? AND "+hi+" > ?)", H+delta, L-delta)
	default: // eq
		q.add("("+lo+" >= ? AND "+hi+" <= ?)", L, H)
	}
}

// numberCondition compares the stored value (the middle of its implicit
// range) with the search value and its implicit range (R4 3.1.1.4.1).
func numberCondition(q *query, v search.Value) {
	mid := "((s.nlow + s.nhigh) / 2)"
	switch v.Prefix {
	case "ne":
		q.add("NOT ("+mid+" >= ? AND "+mid+" < ?)", v.NLow, v.NHigh)
	case "gt", "sa":
		q.add(mid+" > ?", v.Num)
	case "lt", "eb":
		q.add(mid+" < ?", v.Num)
	case "ge":
		q.add(mid+" >= ?", v.Num)
	case "le":
		q.add(mid+" <= ?", v.Num)
	case "ap":
		d := math.Abs(v.Num) * 0.1
		q.add("("+mid+" >= ? AND "+mid+" <= ?)", v.Num-d, v.Num+d)
	default:
		q.add("("+mid+" >= ? AND "+mid+" < ?)", v.NLow, v.NHigh)
	}
}

// include reads what sq's _include and _revinclude reach: _include
// follows the matches' reference parameters to their targets, _revinclude
// finds resources whose reference parameters point at the matches;
// :iterate repeats on what was included, up to three rounds.
func (r reader) include(ctx context.Context, sq *search.Query, matches []*store.Resource, fused []search.Include, first []*store.Resource) ([]*store.Resource, error) {
	seen := map[string]bool{}
	for _, m := range matches {
		seen[m.Type+"/"+m.ID] = true
	}
	var out []*store.Resource
	frontier := matches
	for round := 0; round < 3 && len(frontier) > 0; round++ {
		var next []*store.Resource
		if round == 0 {
			// The targets of the includes the page's statement read.
			for _, res := range first {
				if key := res.Type + "/" + res.ID; !seen[key] {
					seen[key] = true
					next = append(next, res)
				}
			}
		}
		// add reads the current versions of the resources that targets
		// names (a query of t, i columns) and keeps those not seen yet.
		add := func(targets query) error {
			found, err := r.currentVersions(ctx, targets)
			if err != nil {
				return err
			}
			for _, res := range found {
				if key := res.Type + "/" + res.ID; !seen[key] {
					seen[key] = true
					next = append(next, res)
				}
			}
			return nil
		}
		// One query per include and source type, for the whole frontier.
		for _, inc := range sq.Include {
			if round > 0 && !inc.Iterate || round == 0 && slices.Contains(fused, inc) {
				continue
			}
			for _, typ := range frontierTypes(frontier) {
				if inc.SourceType != "*" && inc.SourceType != typ {
					continue
				}
				var q query
				q.add("SELECT DISTINCT s.sys AS t, s.val AS i FROM search_index s WHERE s.res_type = ? AND ", typ)
				r.s.d.inList(&q, "s.res_id", idsOf(frontier, typ))
				referenceTargets(&q, inc)
				if err := add(q); err != nil {
					return nil, err
				}
			}
		}
		for _, inc := range sq.RevInclude {
			if round > 0 && !inc.Iterate {
				continue
			}
			for _, typ := range frontierTypes(frontier) {
				var q query
				q.add("SELECT DISTINCT s.res_type AS t, s.res_id AS i FROM search_index s WHERE s.sys = ? AND ", typ)
				r.s.d.inList(&q, "s.val", idsOf(frontier, typ))
				q.add(" AND s.raw <> '#identifier'")
				if inc.SourceType != "*" {
					q.add(" AND s.res_type = ?", inc.SourceType)
				}
				if inc.Param != "*" {
					q.add(" AND s.param = ?", inc.Param)
				}
				if err := add(q); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, next...)
		frontier = next
	}
	return out, nil
}

// fusedIncludes are the includes of sq whose first round the statement of
// the page reads with the page (withIncludes): those from the searched
// type's own references. The others, and later rounds, are read after.
func fusedIncludes(sq *search.Query) []search.Include {
	if sq.Type == "" {
		return nil
	}
	var out []search.Include
	for _, inc := range sq.Include {
		if inc.SourceType == sq.Type || inc.SourceType == "*" {
			out = append(out, inc)
		}
	}
	return out
}

// referenceTargets limits index rows s, of the resources an include starts
// from, to the references inc follows: resolvable ones (with a type, not
// an identifier), of its parameter and target type.
func referenceTargets(q *query, inc search.Include) {
	q.add(" AND s.sys <> '' AND s.raw <> '#identifier'")
	if inc.Param != "*" {
		q.add(" AND s.param = ?", inc.Param)
	}
	if inc.TargetType != "" {
		q.add(" AND s.sys = ?", inc.TargetType)
	}
}

// frontierTypes lists the resource types of rs, in order of appearance.
func frontierTypes(rs []*store.Resource) []string {
	var types []string
	for _, r := range rs {
		if !slices.Contains(types, r.Type) {
			types = append(types, r.Type)
		}
	}
	return types
}

// idsOf lists the ids of the typ resources of rs.
func idsOf(rs []*store.Resource, typ string) []string {
	var ids []string
	for _, r := range rs {
		if r.Type == typ {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// currentVersions reads, in one query, the current versions of the resources
// that targets names (a query of type and id columns t and i); deleted
// resources and references to nothing are left out.
func (r reader) currentVersions(ctx context.Context, targets query) ([]*store.Resource, error) {
	var q query
	q.add("SELECT " + versionColumns + " FROM (")
	q.add(targets.b.String(), targets.args...)
	q.add(") x" + r.s.d.newestVersion("x.t", "x.i") + " WHERE v.deleted = 0 ORDER BY v.type, v.id")
	rows, err := r.query(ctx, q.b.String(), q.args...)
	if err != nil {
		return nil, fmt.Errorf("include: %w", err)
	}
	defer rows.Close()
	var out []*store.Resource
	var sealed [][]byte
	for rows.Next() {
		res, body, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out, sealed = append(out, res), append(sealed, body)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	for i, res := range out {
		if err := r.open(ctx, res, sealed[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// withIncludes extends sel, the statement of a page of sq, to read the
// first round of the includes incs with the page in one statement: the
// page's rows (part 0) and then the current, live versions of what the
// page's references of incs point at (part 1), read from the references of
// the page's first sq.Count rows, not of the one row more that tells a
// next page follows. One statement instead of two: a second round trip
// was a fifth of the gateway's CPU for an _include search on PostgreSQL.
// The statement runs on the page's pool, planned as the page is; the
// targets need no DISTINCT across includes, as UNION keeps each once.
func (d dialect) withIncludes(sel *query, sq *search.Query, keys []sortKey, incs []search.Include) *query {
	order := func(prefix string) string {
		var b strings.Builder
		for i, k := range keys {
			b.WriteString(fmt.Sprintf("%sk%d", prefix, i))
			if k.desc {
				b.WriteString(" DESC")
			}
			b.WriteString(", ")
		}
		return b.String()
	}
	cols := strings.ReplaceAll(versionColumns, "v.", "p.")
	nulls := ""
	for i := range keys {
		cols += fmt.Sprintf(", p.k%d", i)
		nulls += ", NULL"
	}
	q := &query{}
	q.add("WITH p AS MATERIALIZED (")
	q.add(sel.b.String(), sel.args...)
	q.add(") SELECT " + cols + ", 0 AS part FROM p UNION ALL SELECT " + versionColumns + nulls + ", 1 FROM (")
	for i, inc := range incs {
		if i > 0 {
			q.add(" UNION ")
		}
		q.add("SELECT DISTINCT s.sys AS t, s.val AS i FROM search_index s WHERE s.res_type = ?", sq.Type)
		q.add(" AND s.res_id IN (SELECT p.id FROM p ORDER BY "+order("p.")+"p.id LIMIT ?)", sq.Count)
		referenceTargets(q, inc)
	}
	q.add(") x" + d.newestVersion("x.t", "x.i") + " WHERE v.deleted = 0 ORDER BY part, " + order("") + "type, id")
	return q
}
