// Package ukcore maps the platform's records (package mapping) to FHIR R4
// resources that follow UK Core (https://simplifier.net/hl7fhirukcorer4,
// the profiles in ../shared/ukcore), built with the typed structs of
// github.com/samply/golang-fhir-models.
//
// A record becomes one transaction Bundle. Every resource in it carries an
// identifier made from the platform's ids (or a national one: NHS number,
// ODS code, GMC number), and its entry is a conditional update on that
// identifier (R4 3.1.0.9), so sending a record again updates the resources
// it made before and never duplicates them. Entries refer to each other by
// urn:uuid fullUrls derived from those identifiers, so the same record
// always maps to the same bytes: the store can tell an unchanged resource
// from a changed one.
//
// The package builds resources; it does not store or send them.
package ukcore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"

	fhir "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/google/uuid"

	"github.com/promsgateway/gateway/mapping"
)

// Mapped is one record as FHIR: a transaction Bundle, and the definitions
// its responses answer.
type Mapped struct {
	// Bundle is the transaction Bundle JSON.
	Bundle []byte
	// Definitions is a transaction Bundle of the Questionnaires the
	// record's responses answer (nil when it has none), and DefinitionsKey
	// names its content: the definitions are the same for every record, so
	// a caller stores them once and not with each record. Responses refer
	// to them by canonical URL, so the record's Bundle does not depend on
	// them being stored first.
	Definitions    []byte
	DefinitionsKey string
}

// namespace is the UUID namespace of entry fullUrls (a random constant: the
// ids only have to be stable, not meaningful).
var namespace = uuid.MustParse("0d4c7c48-3f0a-4d27-9e51-6b3a3c1fbc8e")

// builder collects a record's entries.
type builder struct {
	rec     *mapping.Record
	base    string // the source system, without a trailing slash
	entries []fhir.BundleEntry
	// defs are the Questionnaire entries, kept apart (Mapped.Definitions).
	defs    []fhir.BundleEntry
	seen    map[string]string // Type|system|value -> fullUrl
	patient string            // the Patient's fullUrl
	targets []fhir.Reference  // what the Provenance covers: the record's own resources
	// teams are the CareTeams by key (providers, team); studyRefs the
	// ResearchStudies by study id; subjects the ResearchSubjects waiting
	// for their consent.
	teams      map[string]fhir.Reference
	studyRefs  map[string]fhir.Reference
	subjects   map[string]*fhir.ResearchSubject
	subjectIDs map[string]fhir.Identifier
}

// Map turns a record that passed mapping.Check into a transaction Bundle.
// It fails only on a record Check would have refused.
func Map(r *mapping.Record) (*Mapped, error) {
	b := &builder{rec: r, base: strings.TrimSuffix(r.Source.System, "/"), seen: map[string]string{},
		teams: map[string]fhir.Reference{}, studyRefs: map[string]fhir.Reference{},
		subjects: map[string]*fhir.ResearchSubject{}, subjectIDs: map[string]fhir.Identifier{}}
	if err := b.record(); err != nil {
		return nil, fmt.Errorf("map record %s: %w", r.Source.Record, err)
	}
	m := &Mapped{Bundle: transaction(b.entries)}
	if len(b.defs) > 0 {
		m.Definitions = transaction(b.defs)
		sum := sha256.Sum256(m.Definitions)
		m.DefinitionsKey = hex.EncodeToString(sum[:])
	}
	return m, nil
}

// transaction writes a transaction Bundle of entries, as json.Marshal of
// the samply Bundle would, but without validating and compacting again
// every resource json.Marshal already wrote (a tenth of the import's CPU).
func transaction(entries []fhir.BundleEntry) []byte {
	n := 64
	for _, e := range entries {
		n += len(e.Resource) + 256
	}
	out := make([]byte, 0, n)
	out = append(out, `{"type":"transaction","entry":[`...)
	for i, e := range entries {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"fullUrl":`...)
		out = appendString(out, *e.FullUrl)
		out = append(out, `,"resource":`...)
		out = append(out, e.Resource...)
		out = append(out, `,"request":{"method":`...)
		out = appendString(out, e.Request.Method.Code())
		out = append(out, `,"url":`...)
		out = appendString(out, e.Request.Url)
		if e.Request.IfNoneExist != nil {
			out = append(out, `,"ifNoneExist":`...)
			out = appendString(out, *e.Request.IfNoneExist)
		}
		out = append(out, `}}`...)
	}
	return append(out, `],"resourceType":"Bundle"}`...)
}

func appendString(out []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(out, q...)
}

func (b *builder) record() error {
	steps := []func() error{b.patientResource, b.care, b.measurements, b.children, b.studies, b.episodes, b.comorbidities, b.consents, b.provenance}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// system is the identifier system of the platform's ids of one kind.
func (b *builder) system(kind string) string { return b.base + "/Id/" + kind }

// localID is an identifier in the platform's namespace.
func (b *builder) localID(kind, value string) fhir.Identifier {
	return fhir.Identifier{System: str(b.system(kind)), Value: str(value)}
}

// searchEscape escapes \, comma, | and $ in a search value.
func searchEscape(v string) string {
	return strings.NewReplacer(`\`, `\\`, `,`, `\,`, `|`, `\|`, `$`, `\$`).Replace(v)
}

// referenceData are the types many records share; see put.
var referenceData = map[string]bool{"Organization": true, "Practitioner": true, "PractitionerRole": true, "ResearchStudy": true}

// Shared reports whether resources of type typ are shared by many records
// (organisations, practitioners, studies): a record's Provenance does not
// target them, and a record that stops naming one leaves it in place.
func Shared(typ string) bool { return referenceData[typ] }

// derivedID identifies a resource the mapping derives (a score, a care
// team, a consent decision) rather than one the platform names: its value
// is a digest of the parts that make it unique, so the same record always
// gives the same identifier, and the identifier, which is searchable and
// indexed in clear, says nothing of the patient or their condition (a
// readable "p-1001-comorbidity-diabetes" would).
func (b *builder) derivedID(kind string, parts ...string) fhir.Identifier {
	sum := sha256.Sum256([]byte(b.base + "\x00" + kind + "\x00" + strings.Join(parts, "\x00")))
	return b.localID(kind, "d-"+hex.EncodeToString(sum[:16]))
}

// put adds res as a conditional update on id and returns a reference to it.
// A resource already added under the same identifier is not added twice
// (a surgeon named by two procedures).
func (b *builder) put(typ string, id fhir.Identifier, res any) (fhir.Reference, error) {
	key := typ + "|" + *id.System + "|" + *id.Value
	if full, ok := b.seen[key]; ok {
		return fhir.Reference{Reference: str(full)}, nil
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return fhir.Reference{}, fmt.Errorf("%s %s: %w", typ, *id.Value, err)
	}
	full := "urn:uuid:" + uuid.NewSHA1(namespace, []byte(key)).String()
	b.seen[key] = full
	// The search value escapes the characters search gives a meaning
	// (R4 3.1.1.5.7), so a comma or bar in the platform's URI or ids
	// matches itself instead of splitting the criterion.
	query := "identifier=" + url.QueryEscape(searchEscape(*id.System)+"|"+searchEscape(*id.Value))
	entry := fhir.BundleEntry{
		FullUrl:  str(full),
		Resource: raw,
		Request:  &fhir.BundleEntryRequest{Method: fhir.HTTPVerbPUT, Url: typ + "?" + query},
	}
	if referenceData[typ] {
		// Shared by many records, each of which may know less of it than
		// the last (a surgeon named only by GMC number): created by the
		// first record that names it, never overwritten by a later one.
		entry.Request = &fhir.BundleEntryRequest{Method: fhir.HTTPVerbPOST, Url: typ, IfNoneExist: str(query)}
	}
	ref := fhir.Reference{Reference: str(full)}
	if typ == "Questionnaire" {
		// A definition, not the record's data: referred to by canonical URL.
		b.defs = append(b.defs, entry)
		return ref, nil
	}
	b.entries = append(b.entries, entry)
	if !referenceData[typ] {
		b.targets = append(b.targets, ref)
	}
	return ref, nil
}

// provenance records where the record's resources came from: one
// Provenance per record version, identified by the record id and its
// update time, so an unchanged record adds none (R4 Provenance, UK Core
// Provenance).
func (b *builder) provenance() error {
	src := b.rec.Source
	p := fhir.Provenance{
		Meta:     profile("UKCore-Provenance"),
		Target:   b.targets,
		Recorded: *instant(src.Updated),
		Agent: []fhir.ProvenanceAgent{{
			Type: cc(coding("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author", "Author")),
			// The platform is software: a Device, named by its URI.
			Who: fhir.Reference{Type: str("Device"), Identifier: &fhir.Identifier{System: str("urn:ietf:rfc:3986"), Value: str(src.System)}, Display: str("PROMs platform")},
		}},
		Entity: []fhir.ProvenanceEntity{{
			Role: fhir.ProvenanceEntityRoleSource,
			What: fhir.Reference{Identifier: &fhir.Identifier{System: str(b.system("record")), Value: str(src.Record)}},
		}},
	}
	return b.putProvenance(p)
}

// putProvenance adds the Provenance as an update by id: Provenance has no
// identifier to search on, so its id is derived from the record id and
// version, which makes re-sending idempotent all the same.
func (b *builder) putProvenance(p fhir.Provenance) error {
	src := b.rec.Source
	key := "Provenance|" + b.base + "|" + src.Record + "|" + src.Updated
	id := uuid.NewSHA1(namespace, []byte(key)).String()
	p.Id = str(id)
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	b.entries = append(b.entries, fhir.BundleEntry{
		FullUrl:  str("urn:uuid:" + id),
		Resource: raw,
		Request:  &fhir.BundleEntryRequest{Method: fhir.HTTPVerbPUT, Url: "Provenance/" + id},
	})
	return nil
}

// profile is a meta naming a UK Core profile.
func profile(name string) *fhir.Meta {
	return &fhir.Meta{Profile: []string{"https://fhir.hl7.org.uk/StructureDefinition/" + name}}
}

func str(s string) *string { return &s }

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func coding(system, code, display string) fhir.Coding {
	return fhir.Coding{System: str(system), Code: str(code), Display: strOrNil(display)}
}

func cc(c ...fhir.Coding) *fhir.CodeableConcept {
	return &fhir.CodeableConcept{Coding: c}
}

func ccText(text string, c ...fhir.Coding) *fhir.CodeableConcept {
	return &fhir.CodeableConcept{Coding: c, Text: strOrNil(text)}
}

// instant turns a date or RFC 3339 time into a FHIR instant (a date alone
// becomes midnight UTC).
func instant(v string) *string {
	if len(v) == 10 {
		return str(v + "T00:00:00Z")
	}
	return str(v)
}

// dateTime keeps a date as a date and an RFC 3339 time as it is: both are
// FHIR dateTimes.
func dateTime(v string) *string { return strOrNil(v) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
