// Package mapping owns the PROMs platform's internal model (patients,
// procedures, questionnaires, consent), its mapping to FHIR R4 UK Core and
// the PROMs instruments and their scoring (mapping/proms). It talks to
// neither storage nor HTTP; the gateway's importers call it and store what
// it returns.
package mapping
