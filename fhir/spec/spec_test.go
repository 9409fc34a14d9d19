package spec

import (
	"testing"

	r4pb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
)

// The embedded definitions and the google/fhir parser must agree on which
// resource types R4 has, or the API would accept types it cannot parse.
func TestResourceTypesMatchParser(t *testing.T) {
	oneof := (&r4pb.ContainedResource{}).ProtoReflect().Descriptor().Oneofs().ByName("oneof_resource")
	parser := map[string]bool{}
	for i := 0; i < oneof.Fields().Len(); i++ {
		parser[string(oneof.Fields().Get(i).Message().Name())] = true
	}
	for _, n := range ResourceTypes() {
		if !parser[n] {
			t.Errorf("%s is in the definitions but not in the parser", n)
		}
		delete(parser, n)
	}
	for n := range parser {
		t.Errorf("%s is in the parser but not in the definitions", n)
	}
	if Version != "4.0.1" {
		t.Errorf("Version = %q", Version)
	}
}

func TestInSummary(t *testing.T) {
	obs, _ := Lookup("Observation")
	tests := []struct {
		key  string
		want bool
	}{
		{"status", true}, {"valueQuantity", true}, {"_status", true}, {"value", true},
		{"note", false}, {"text", false}, {"valueless", false}, {"effectiveDateTime", true},
	}
	for _, tc := range tests {
		if got := obs.InSummary(tc.key); got != tc.want {
			t.Errorf("InSummary(%q) = %v; want %v", tc.key, got, tc.want)
		}
	}
	if _, ok := Lookup("DomainResource"); ok {
		t.Error("abstract DomainResource is listed")
	}
}
