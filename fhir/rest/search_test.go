package rest_test

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/promsgateway/gateway/fhir/resource"
	"github.com/promsgateway/gateway/fhir/search"
)

func ids(t *testing.T, r reply) []string {
	t.Helper()
	var out []string
	for _, e := range entries(t, r) {
		if field(e, "search", "mode") == "match" {
			out = append(out, field(e, "resource", "id").(string))
		}
	}
	return out
}

// nextLink is the Bundle's next link, or "".
func nextLink(t *testing.T, r reply) string {
	t.Helper()
	links, _ := r.json(t)["link"].([]any)
	for _, l := range links {
		if l.(map[string]any)["relation"] == "next" {
			return l.(map[string]any)["url"].(string)
		}
	}
	return ""
}

func TestSearchAPI(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		expect(t, g.do("PUT", "/Organization/gp", `{"resourceType":"Organization","id":"gp","name":"Leeds GP"}`), 201)
		for i := 0; i < 5; i++ {
			body := fmt.Sprintf(`{"resourceType":"Patient","id":"p%d","name":[{"family":"Smith%d"}],"birthDate":"19%[3]d0","deceasedDateTime":"19%[3]d0","managingOrganization":{"reference":"Organization/gp"}}`, i, i, 5+i)
			expect(t, g.do("PUT", fmt.Sprintf("/Patient/p%d", i), body), 201)
			obs := fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","status":"final","code":{"text":"OHS"},"subject":{"reference":"Patient/p%d"},"valueInteger":%d}`, i, i, 30+i)
			expect(t, g.do("PUT", fmt.Sprintf("/Observation/o%d", i), obs), 201)
		}
		r := g.do("GET", "/Patient?family=smith&_count=2&_sort=-death-date", "")
		expect(t, r, 200)
		b := r.json(t)
		if b["type"] != "searchset" || b["total"] != float64(5) {
			t.Fatalf("searchset: %.300s", r.body)
		}
		var got []string
		for page := 0; ; page++ {
			got = append(got, ids(t, r)...)
			next := nextLink(t, r)
			if next == "" {
				break
			}
			if page > 5 {
				t.Fatal("paging does not end")
			}
			r = g.do("GET", strings.TrimPrefix(next, g.url), "")
			expect(t, r, 200)
		}
		if fmt.Sprint(got) != "[p4 p3 p2 p1 p0]" {
			t.Errorf("paged, sorted by -death-date: %v", got)
		}

		// POST _search with a form body finds the same.
		f := g.do("POST", "/Patient/_search", "family=smith3", "Content-Type", "application/x-www-form-urlencoded")
		expect(t, f, 200)
		if fmt.Sprint(ids(t, f)) != "[p3]" {
			t.Errorf("POST _search: %s", f.body)
		}

		// _include and _revinclude mark what they add as include.
		inc := g.do("GET", "/Observation?_id=o1&_include=Observation:subject&_include:iterate=Patient:organization", "")
		modes := map[string]string{}
		for _, e := range entries(t, inc) {
			modes[field(e, "resource", "resourceType").(string)+"/"+field(e, "resource", "id").(string)] = field(e, "search", "mode").(string)
		}
		if modes["Observation/o1"] != "match" || modes["Patient/p1"] != "include" || modes["Organization/gp"] != "include" || len(modes) != 3 {
			t.Errorf("_include: %v", modes)
		}
		rev := g.do("GET", "/Patient?_id=p2&_revinclude=Observation:subject", "")
		if n := len(entries(t, rev)); n != 2 {
			t.Errorf("_revinclude gave %d entries: %s", n, rev.body)
		}
		// Several matches at once: each included resource comes once, the
		// iterated organization (shared by every patient) once too.
		for _, tc := range []struct{ query, want string }{
			{"/Observation?_id=o1,o2,o3&_include=Observation:subject&_include:iterate=Patient:organization",
				"[Observation/o1:match Observation/o2:match Observation/o3:match Organization/gp:include Patient/p1:include Patient/p2:include Patient/p3:include]"},
			{"/Patient?_id=p0,p4&_revinclude=Observation:subject",
				"[Observation/o0:include Observation/o4:include Patient/p0:match Patient/p4:match]"},
			{"/Observation?_id=o0,o4&_include=Observation:subject&_revinclude:iterate=Observation:subject",
				"[Observation/o0:match Observation/o4:match Patient/p0:include Patient/p4:include]"},
			// A page includes what its own matches point at, not what the
			// first match of the next page does; in either order.
			{"/Observation?_id=o1,o2,o3&_include=Observation:subject&_count=2",
				"[Observation/o1:match Observation/o2:match Patient/p1:include Patient/p2:include]"},
			{"/Observation?_id=o1,o2,o3&_include=Observation:subject&_count=2&_sort=-_id",
				"[Observation/o2:match Observation/o3:match Patient/p2:include Patient/p3:include]"},
			// Two includes reaching one resource include it once.
			{"/Observation?_id=o1,o2&_include=Observation:subject&_include=Observation:patient",
				"[Observation/o1:match Observation/o2:match Patient/p1:include Patient/p2:include]"},
			{"/Observation?_id=o1&_include=*",
				"[Observation/o1:match Patient/p1:include]"},
			// A reference to a match includes nothing more.
			{"/Patient?_id=p1,p2&_include=Patient:organization&_revinclude=Observation:subject&_count=1",
				"[Observation/o1:include Organization/gp:include Patient/p1:match]"},
		} {
			r := g.do("GET", tc.query, "")
			expect(t, r, 200)
			var got []string
			for _, e := range entries(t, r) {
				got = append(got, fmt.Sprintf("%s/%s:%s", field(e, "resource", "resourceType"), field(e, "resource", "id"), field(e, "search", "mode")))
			}
			slices.Sort(got)
			if fmt.Sprint(got) != tc.want {
				t.Errorf("%s:\n got %v\nwant %s", tc.query, got, tc.want)
			}
		}

		// Unknown parameters are ignored and left out of the self link.
		u := g.do("GET", "/Patient?family=smith0&shoe-size=9", "")
		expect(t, u, 200)
		self := u.json(t)["link"].([]any)[0].(map[string]any)["url"].(string)
		if strings.Contains(self, "shoe-size") || !strings.Contains(self, "family=smith0") || len(ids(t, u)) != 1 {
			t.Errorf("ignored parameter: self %s, %s", self, u.body)
		}

		c := g.do("GET", "/Observation?_summary=count", "")
		if c.json(t)["total"] != float64(5) || c.json(t)["entry"] != nil {
			t.Errorf("_summary=count: %s", c.body)
		}
		n := g.do("GET", "/Observation?_total=none&subject=Patient/p1,Patient/p2,Patient/p3", "")
		if n.json(t)["total"] != nil || len(ids(t, n)) != 3 {
			t.Errorf("_total=none: %s", n.body)
		}
		s := g.do("GET", "/Patient?_id=p1&_summary=true", "")
		if !strings.Contains(string(s.body), "SUBSETTED") {
			t.Errorf("_summary=true entries not subsetted: %s", s.body)
		}
		// A search inside a transaction (GET entry) works as well.
		tx := g.do("POST", "", `{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Patient?birthdate=1970"}}]}`)
		if !strings.Contains(string(tx.body), `"id":"p2"`) {
			t.Errorf("search in a batch: %s", tx.body)
		}
	})
}

// For every search parameter that has a value in an official example, a
// query built from that value finds the example and a query that differs
// does not (issue 3's proof).
func TestSearchFindsOfficialExamples(t *testing.T) {
	dir := sharedDir(t, "conformance", "r4-examples")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		checked := 0
		for _, f := range files {
			if _, bad := invalidExamples[filepath.Base(f)]; bad {
				continue
			}
			raw, _ := os.ReadFile(f)
			h, _, _ := resource.ReadHeader(raw)
			r := g.do("POST", "/"+h.Type, string(raw))
			expect(t, r, 201)
			id := r.json(t)["id"].(string)
			rows, _ := search.R4().Extract(h.Type, raw)
			// The upper end of each parameter's dates and numbers, so that
			// a query that must not match clears every value it has.
			maxDate, maxNum := map[string]int64{}, map[string]float64{}
			for _, row := range rows {
				maxDate[row.Param] = max(maxDate[row.Param], row.DHigh)
				maxNum[row.Param] = max(maxNum[row.Param], row.NHigh)
			}
			for _, row := range rows {
				hit, miss, ok := queriesFor(h.Type, row, maxDate[row.Param], maxNum[row.Param])
				if !ok {
					continue
				}
				for _, tc := range []struct {
					q    string
					want bool
				}{{hit, true}, {miss, false}} {
					q := "/" + h.Type + "?_id=" + id + "&" + tc.q
					res := g.do("GET", q, "", "Prefer", "handling=strict")
					if res.status != 200 {
						t.Errorf("%s: %s: %d %.300s", filepath.Base(f), q, res.status, res.body)
						continue
					}
					if found := len(ids(t, res)) == 1; found != tc.want {
						t.Errorf("%s: %s found=%v; want %v", filepath.Base(f), q, found, tc.want)
					}
					checked++
				}
			}
		}
		t.Logf("%d queries checked", checked)
		if checked < 500 {
			t.Errorf("only %d queries checked", checked)
		}
	})
}

// queriesFor builds, from an index row, a query that must match it and one
// that must not.
func queriesFor(typ string, row search.Row, maxDate int64, maxNum float64) (hit, miss string, ok bool) {
	if row.Param == "_compartment" {
		return "", "", false // internal: compartment membership, not a search parameter
	}
	p := url.QueryEscape(row.Param)
	esc := func(s string) string {
		return url.QueryEscape(strings.NewReplacer(`\`, `\\`, `,`, `\,`, `|`, `\|`, `$`, `\$`).Replace(s))
	}
	if def, found := search.R4().Lookup(typ, row.Param); found && def.Type == "composite" {
		first := esc(row.Sys) + "|" + esc(row.Val)
		var second string
		switch {
		case row.HasNumber:
			unit := strings.SplitN(row.Raw, "|", 2)
			second = "ap" + url.QueryEscape(strconv.FormatFloat((row.NLow+row.NHigh)/2, 'f', -1, 64))
			if len(unit) == 2 && unit[1] != "" {
				second += "|" + esc(unit[0]) + "|" + esc(unit[1])
			}
		case row.HasDate:
			second = "ge" + url.QueryEscape(time.UnixMicro(row.DLow).UTC().Format("2006-01-02T15:04:05.000000Z"))
		case strings.Contains(row.Raw, "|"):
			parts := strings.SplitN(row.Raw, "|", 2)
			second = esc(parts[0]) + "|" + esc(parts[1])
		default:
			second = esc(row.Raw)
		}
		return p + "=" + first + "$" + second, p + "=" + first + "-no$" + second, true
	}
	switch {
	case row.HasDate && search.Protected(typ, row.Param):
		// A blind index answers equality at the value's own precision.
		layout := "2006"
		switch span := time.Duration(row.DHigh-row.DLow) * time.Microsecond; {
		case span <= 24*time.Hour:
			layout = "2006-01-02"
		case span <= 31*24*time.Hour:
			layout = "2006-01"
		}
		return p + "=" + time.UnixMicro(row.DLow).UTC().Format(layout), p + "=" + time.UnixMicro(row.DHigh).UTC().Format(layout), true
	case row.HasDate:
		if row.DLow < -62135596800000000 || row.DHigh > 253402300799000000 {
			return "", "", false // open-ended period
		}
		if maxDate > 253402300799000000 {
			return "", "", false
		}
		lo := time.UnixMicro(row.DLow).UTC().Format("2006-01-02T15:04:05.000000Z")
		hi := time.UnixMicro(maxDate).UTC().Format("2006-01-02T15:04:05.000000Z")
		return p + "=ge" + url.QueryEscape(lo), p + "=sa" + url.QueryEscape(hi), true
	case row.HasNumber:
		num := func(f float64) string { return url.QueryEscape(strconv.FormatFloat(f, 'f', -1, 64)) }
		mid := (row.NLow + row.NHigh) / 2
		return p + "=ap" + num(mid), p + "=gt" + num(maxNum+math.Abs(maxNum)+1), true
	case row.Raw == "#of-type":
		parts := strings.SplitN(row.Sys, "|", 2)
		typ := esc(parts[0]) + "|" + esc(parts[1])
		return p + ":of-type=" + typ + "|" + esc(row.Val), p + ":of-type=" + typ + "|" + esc(row.Val) + "-no", true
	case row.Raw == "#identifier":
		return p + ":identifier=" + esc(row.Sys) + "|" + esc(row.Val), p + ":identifier=" + esc(row.Sys) + "|" + esc(row.Val) + "-no", true
	case row.Param == "_profile" || row.Param == "url" || row.Param == "_source":
		if row.Val == "" {
			return "", "", false
		}
		return p + "=" + esc(row.Val), p + "=" + esc(row.Val) + "-no", true
	}
	// Which kind of parameter is it?
	switch {
	case row.Raw != "" && row.Val == search.Normalize(row.Raw) && row.Sys == "": // string
		return p + "=" + esc(row.Raw), p + "=" + esc(row.Raw) + "zzz", true
	case row.Sys != "" && row.Val != "" && strings.Contains(row.Raw, "/") && !strings.HasPrefix(row.Raw, "#"): // reference
		return p + "=" + esc(row.Sys+"/"+row.Val), p + "=" + esc(row.Sys+"/"+row.Val+"-no"), true
	case row.Val != "": // token or uri
		if row.Sys != "" {
			return p + "=" + esc(row.Sys) + "|" + esc(row.Val), p + "=" + esc(row.Sys) + "|" + esc(row.Val) + "-no", true
		}
		return p + "=" + esc(row.Val), p + "=" + esc(row.Val) + "-no", true
	}
	return "", "", false
}

func TestCompartmentAndEverything(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		expect(t, g.do("PUT", "/Patient/p1", `{"resourceType":"Patient","id":"p1"}`), 201)
		expect(t, g.do("PUT", "/Patient/p2", `{"resourceType":"Patient","id":"p2"}`), 201)
		expect(t, g.do("PUT", "/Organization/org", `{"resourceType":"Organization","id":"org"}`), 201)
		for i, pat := range []string{"p1", "p1", "p1", "p2"} {
			expect(t, g.do("PUT", fmt.Sprintf("/Observation/o%d", i), fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/%s"}}`, i, pat)), 201)
		}
		expect(t, g.do("PUT", "/Condition/c1", `{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/p1"},"asserter":{"reference":"Patient/p1"}}`), 201)

		r := g.do("GET", "/Patient/p1/Observation", "")
		expect(t, r, 200)
		if fmt.Sprint(ids(t, r)) != "[o0 o1 o2]" {
			t.Errorf("compartment search: %v", ids(t, r))
		}
		r = g.do("GET", "/Patient/p1/Observation?_id=o1,o3", "")
		if fmt.Sprint(ids(t, r)) != "[o1]" {
			t.Errorf("compartment search with criteria: %v", ids(t, r))
		}
		expect(t, g.do("GET", "/Patient/p1/Organization", ""), 404)
		expect(t, g.do("GET", "/Encounter/e1/Observation", ""), 404)

		var all []string
		r = g.do("GET", "/Patient/p1/$everything?_count=2", "")
		for page := 0; ; page++ {
			expect(t, r, 200)
			for _, e := range entries(t, r) {
				all = append(all, field(e, "resource", "resourceType").(string)+"/"+field(e, "resource", "id").(string))
			}
			next := nextLink(t, r)
			if next == "" || page > 5 {
				break
			}
			r = g.do("GET", strings.TrimPrefix(next, g.url), "")
		}
		if fmt.Sprint(all) != "[Condition/c1 Observation/o0 Observation/o1 Observation/o2 Patient/p1]" {
			t.Errorf("$everything: %v", all)
		}
		r = g.do("GET", "/Patient/p1/$everything?_type=Condition", "")
		if n := len(entries(t, r)); n != 1 {
			t.Errorf("$everything?_type=Condition gave %d entries", n)
		}
		expect(t, g.do("GET", "/Patient/p1/$everything?_type=Organization", ""), 400)
		expect(t, g.do("GET", "/Patient/nobody/$everything", ""), 404)
		cs := g.do("GET", "/metadata", "")
		if !strings.Contains(string(cs.body), "CompartmentDefinition/patient") || !strings.Contains(string(cs.body), "Patient-everything") {
			t.Error("CapabilityStatement does not declare the compartment and $everything")
		}
	})
}

func TestSystemSearch(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		expect(t, g.do("PUT", "/Patient/p", `{"resourceType":"Patient","id":"p","meta":{"tag":[{"system":"urn:t","code":"proms"}]}}`), 201)
		expect(t, g.do("PUT", "/Observation/o", `{"resourceType":"Observation","id":"o","meta":{"tag":[{"system":"urn:t","code":"proms"}]},"status":"final","code":{"text":"x"}}`), 201)
		expect(t, g.do("PUT", "/Observation/q", `{"resourceType":"Observation","id":"q","status":"final","code":{"text":"x"}}`), 201)
		r := g.do("GET", "?_tag=urn:t|proms", "")
		expect(t, r, 200)
		if n := len(entries(t, r)); n != 2 || r.json(t)["total"] != float64(2) {
			t.Errorf("system search by _tag: %s", r.body)
		}
		r = g.do("GET", "?_type=Observation&_id=o,q,p", "")
		if fmt.Sprint(ids(t, r)) != "[o q]" {
			t.Errorf("system search with _type: %v", ids(t, r))
		}
		expect(t, g.do("GET", "?_type=Nonsense", ""), 400)
	})
}

func TestValueSetModifiers(t *testing.T) {
	forEachEngine(t, nil, func(t *testing.T, g *gateway) {
		expect(t, g.do("PUT", "/ValueSet/hips", `{"resourceType":"ValueSet","id":"hips","url":"https://proms.example/ValueSet/hip-scores","status":"active",
			"compose":{"include":[{"system":"http://snomed.info/sct","concept":[{"code":"273335000"},{"code":"1000"}]}],"exclude":[{"system":"http://snomed.info/sct","concept":[{"code":"1000"}]}]}}`), 201)
		expect(t, g.do("PUT", "/ValueSet/filtered", `{"resourceType":"ValueSet","id":"filtered","url":"https://proms.example/ValueSet/filtered","status":"active",
			"compose":{"include":[{"system":"http://snomed.info/sct","filter":[{"property":"concept","op":"is-a","value":"404684003"}]}]}}`), 201)
		for id, code := range map[string]string{"o1": "273335000", "o2": "1000", "o3": "5555"} {
			expect(t, g.do("PUT", "/Observation/"+id, `{"resourceType":"Observation","id":"`+id+`","status":"final","code":{"coding":[{"system":"http://snomed.info/sct","code":"`+code+`"}]}}`), 201)
		}
		r := g.do("GET", "/Observation?code:in=https://proms.example/ValueSet/hip-scores", "")
		expect(t, r, 200)
		if fmt.Sprint(ids(t, r)) != "[o1]" {
			t.Errorf(":in gave %v", ids(t, r))
		}
		r = g.do("GET", "/Observation?code:not-in=https://proms.example/ValueSet/hip-scores", "")
		if fmt.Sprint(ids(t, r)) != "[o2 o3]" {
			t.Errorf(":not-in gave %v", ids(t, r))
		}
		expect(t, g.do("GET", "/Observation?code:in=https://proms.example/ValueSet/unknown", ""), 400)
		expect(t, g.do("GET", "/Observation?code:in=https://proms.example/ValueSet/filtered", ""), 400)
	})
}
