// Package fhir reads, checks, builds and writes FHIR R4 JSON, the form
// medical records arrive and leave in (DESIGN.md decision 14: FHIR at
// the edges, bytes kept exact). Like the rest of protocol/, it is pure
// functions over bytes: no disk, no network, no keys.
//
//   - read.go: ReadResources streams a Bundle of any type, a single
//     resource or Bulk Data NDJSON, and hands out each resource with its
//     bytes exactly as in the input, validated as R4, with the clinical
//     fields of its record envelope (clinical.go: Extract) and a title.
//     scan.go walks the input's structure in a fixed buffer; jsoncheck.go
//     checks each resource as strict JSON (no duplicate keys) before the
//     library sees it.
//   - patients.go: CheckPatients decides whether an import is about one
//     patient, and the account's.
//   - export.go: BundleWriter streams resources back out as a Bundle.
//   - summary.go: Summary builds an International Patient Summary
//     document.
//   - observation.go and labs.go: the Observations a lab panel writes
//     (Marshal) and a lab table reads (Parse), and the panel's LOINC
//     table.
//
// Validation goes through Google's FHIR library (github.com/google/fhir/go,
// R4 protos and its validating JSON unmarshaller: primitives, required
// fields, codes of closed value sets, reference types, unknown fields),
// so what this package accepts is what the library calls valid R4, not
// what a hand-written check happens to let through. The record store
// keeps the bytes exactly as read; this package never rewrites stored
// bytes. protocol itself does not import this package, so a third party
// reading the wire format does not inherit the library.
//
// Everything read is hostile: sizes and nesting are bounded, errors are
// one line naming the position and the JSON path, and text taken from a
// resource for a title or a narrative has control characters removed
// (titles) or is escaped (narratives).
package fhir
