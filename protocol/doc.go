// Package protocol defines the BlockMRS wire formats: account identifiers,
// signed chain blocks and their entries, the record envelope that travels
// inside a record's age encryption, protocol IDs and size limits.
//
// Everything here is a pure function over bytes: no disk, no network, no
// HTTP. A third-party implementation needs PROTOCOL.md and this package
// alone. Encodings are canonical DAG-CBOR; decoders are strict (input that
// does not re-encode to the same bytes is rejected) and treat every byte as
// hostile.
package protocol
