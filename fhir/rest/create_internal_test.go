package rest

import (
	"testing"

	"github.com/google/uuid"
)

// The ids the server assigns are random (version 4) for the types that
// describe a person and time-ordered (version 7) for the others.
func TestNewIDByType(t *testing.T) {
	for _, c := range []struct {
		typ     string
		version uuid.Version
	}{
		{"Patient", 4},
		{"RelatedPerson", 4},
		{"Person", 4},
		{"Observation", 7},
		{"Procedure", 7},
		{"QuestionnaireResponse", 7},
		{"AuditEvent", 7},
		{"Practitioner", 7},
	} {
		id := newID(c.typ)
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != c.version || u.String() != id {
			t.Errorf("newID(%q) = %q: version %d, error %v; want a version %d UUID", c.typ, id, u.Version(), err, c.version)
		}
	}
}
