package search

// unions are the search parameters of R4 whose expression is the union of
// the expressions of two others of the same type, so that a resource's
// index rows for one are exactly the rows of the other two: Observation's
// combo-* parameters are its own element's parameter together with the
// component's (combo-code is code | component-code). Their rows are kept
// once, under the parts: an Observation writes about a fifth fewer index
// rows. A clause, a :missing or a sort on a union reads the parts' rows
// (Clause.IndexParams, IndexParams), which give the same matches and
// the same sort values. TestUnionsAreUnions checks every entry against the
// embedded definitions and against the rows of the official examples.
var unions = map[string]map[string][]string{
	"Observation": {
		"combo-code":                {"code", "component-code"},
		"combo-code-value-concept":  {"code-value-concept", "component-code-value-concept"},
		"combo-code-value-quantity": {"code-value-quantity", "component-code-value-quantity"},
		"combo-data-absent-reason":  {"data-absent-reason", "component-data-absent-reason"},
		"combo-value-concept":       {"value-concept", "component-value-concept"},
		"combo-value-quantity":      {"value-quantity", "component-value-quantity"},
	},
}

// IndexParams are the parameters under which the index keeps the rows of
// typ's parameter code: the parts of a union, else code itself.
func IndexParams(typ, code string) []string {
	if parts := unions[typ][code]; parts != nil {
		return parts
	}
	return []string{code}
}
