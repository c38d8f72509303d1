package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"
	"unicode/utf8"
)

// EnvelopeMagic starts the plaintext of every sealed envelope.
const EnvelopeMagic = "BlockMRS envelope v1\n"

// MaxEnvelopeHeader is the largest encoded envelope header accepted.
const MaxEnvelopeHeader = 16 << 10

// MaxSealedEnvelope is the largest sealed (age-encrypted) envelope a record
// entry may carry: the header plus age's overhead.
const MaxSealedEnvelope = MaxEnvelopeHeader + 1024

// Kind is what a record holds.
type Kind string

// Record kinds.
const (
	KindFile Kind = "file" // any file: a PDF, an image, a DICOM export
	KindFHIR Kind = "fhir" // a FHIR R4 JSON resource or bundle
	KindNote Kind = "note" // a plain-text note
)

// ParseKind checks that s names a known kind.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindFile, KindFHIR, KindNote:
		return k, nil
	}
	return "", fmt.Errorf("unknown record kind %q (want file, fhir or note)", truncate(s))
}

// Envelope is the metadata of a record. It is sealed, that is age-encrypted
// to the same record key as the content, and carried in the author's
// signed record entry, so the record's ciphertext is the encrypted content
// alone and reveals nothing but its size. The sealed plaintext is
//
//	EnvelopeMagic || uvarint(len(header)) || header
//
// where header is the canonical DAG-CBOR encoding of the Envelope.
type Envelope struct {
	Title      string `cbor:"title"`
	Kind       Kind   `cbor:"kind"`
	MediaType  string `cbor:"type"`
	FileName   string `cbor:"filename,omitempty"`
	Author     []byte `cbor:"author"`  // Ed25519 key of the author
	Subject    []byte `cbor:"subject"` // Ed25519 key of whom the record is about
	Created    int64  `cbor:"created"` // Unix milliseconds
	Supersedes *Link  `cbor:"supersedes,omitempty"`
	// FHIR describes the resource of a record that holds one FHIR
	// resource (kind fhir), so that listings, filters and standing grants
	// need not open the content. It is absent for other kinds and for a
	// record holding a whole Bundle stored as one file.
	FHIR *Clinical `cbor:"fhir,omitempty"`
}

// Limits of the clinical fields of an envelope.
const (
	MaxClinicalText  = 1024 // bytes of a code display
	MaxClinicalCode  = 512  // bytes of "system|code"
	MaxCategories    = 16   // category codes of one resource
	MaxCategoryCode  = 64   // bytes of one category code
	MaxClinicalDate  = 64   // bytes of a FHIR date or dateTime
	MaxFullURL       = 1024 // bytes of a Bundle entry's fullUrl
	ClinicalDigestSz = 32   // bytes of a SHA-256 digest
)

// fhirIDRe is FHIR's id datatype.
var fhirIDRe = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// Clinical is what an envelope says about the one FHIR resource its
// record holds. Every field is taken from the resource itself by the
// writer (protocol/fhir); a reader trusts it as far as it trusts the
// author, like the title.
type Clinical struct {
	// ResourceType is the resource's resourceType ("Observation").
	ResourceType string `cbor:"rt" json:"resource_type"`
	// ID is the resource's logical id, if it has one.
	ID string `cbor:"id,omitempty" json:"id,omitempty"`
	// FullURL is the fullUrl the resource had in the Bundle it came in
	// ("urn:uuid:…"), which other resources' references may use; an
	// export gives it back so that those references still resolve.
	FullURL string `cbor:"url,omitempty" json:"full_url,omitempty"`
	// Date is the resource's clinical date as the resource writes it (a
	// FHIR date or dateTime): effective, issued, recorded, onset, or a
	// period's start, whichever the type has first.
	Date string `cbor:"date,omitempty" json:"date,omitempty"`
	// Code is the resource's main code as "system|code" (the first
	// coding of its code element), and Display its text for people.
	Code    string `cbor:"code,omitempty" json:"code,omitempty"`
	Display string `cbor:"display,omitempty" json:"display,omitempty"`
	// Category lists the codes of the resource's categories
	// ("laboratory", "vital-signs"), in the resource's order.
	Category []string `cbor:"category,omitempty" json:"category,omitempty"`
	// Digest is the SHA-256 of the resource's bytes as stored: the same
	// id with the same digest is the same resource, already here.
	Digest []byte `cbor:"digest,omitempty" json:"-"`
}

// Validate checks the clinical fields.
func (c *Clinical) Validate() error {
	if !fhirTypeRe.MatchString(c.ResourceType) {
		return fmt.Errorf("envelope: resource type %q is not a FHIR resource type name", truncate(c.ResourceType))
	}
	if c.ID != "" && !fhirIDRe.MatchString(c.ID) {
		return fmt.Errorf("envelope: resource id %q is not a FHIR id", truncate(c.ID))
	}
	if len(c.FullURL) > MaxFullURL || !utf8.ValidString(c.FullURL) {
		return fmt.Errorf("envelope: fullUrl must be at most %d bytes of UTF-8", MaxFullURL)
	}
	if len(c.Date) > MaxClinicalDate || !utf8.ValidString(c.Date) {
		return fmt.Errorf("envelope: clinical date must be at most %d bytes of UTF-8", MaxClinicalDate)
	}
	if len(c.Code) > MaxClinicalCode || !utf8.ValidString(c.Code) {
		return fmt.Errorf("envelope: code must be at most %d bytes of UTF-8", MaxClinicalCode)
	}
	if len(c.Display) > MaxClinicalText || !utf8.ValidString(c.Display) {
		return fmt.Errorf("envelope: code display must be at most %d bytes of UTF-8", MaxClinicalText)
	}
	if len(c.Category) > MaxCategories {
		return fmt.Errorf("envelope: at most %d categories", MaxCategories)
	}
	for _, cat := range c.Category {
		if cat == "" || len(cat) > MaxCategoryCode || !utf8.ValidString(cat) {
			return fmt.Errorf("envelope: a category code must be 1 to %d bytes of UTF-8", MaxCategoryCode)
		}
	}
	if len(c.Digest) != 0 && len(c.Digest) != ClinicalDigestSz {
		return fmt.Errorf("envelope: digest must be %d bytes (SHA-256)", ClinicalDigestSz)
	}
	return nil
}

// Validate checks the envelope's fields.
func (e *Envelope) Validate() error {
	if len(e.Title) > 1024 || !utf8.ValidString(e.Title) {
		return errors.New("envelope: title must be at most 1024 bytes of UTF-8")
	}
	if _, err := ParseKind(string(e.Kind)); err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	if e.MediaType == "" || len(e.MediaType) > 255 || !utf8.ValidString(e.MediaType) {
		return errors.New("envelope: media type must be 1 to 255 bytes of UTF-8")
	}
	if typ, _, _ := strings.Cut(e.MediaType, ";"); !strings.Contains(typ, "/") {
		return fmt.Errorf("envelope: media type %q is not type/subtype", truncate(e.MediaType))
	}
	if _, _, err := mime.ParseMediaType(e.MediaType); err != nil {
		return fmt.Errorf("envelope: media type %q: %v", truncate(e.MediaType), err)
	}
	if len(e.FileName) > 255 || !utf8.ValidString(e.FileName) {
		return errors.New("envelope: file name must be at most 255 bytes of UTF-8")
	}
	if len(e.Author) != ed25519.PublicKeySize || len(e.Subject) != ed25519.PublicKeySize {
		return errors.New("envelope: author and subject must be 32-byte Ed25519 keys")
	}
	if e.Created < 0 {
		return errors.New("envelope: negative creation time")
	}
	if e.FHIR != nil {
		if e.Kind != KindFHIR {
			return fmt.Errorf("envelope: clinical fields on a %s record (only fhir records have them)", e.Kind)
		}
		if err := e.FHIR.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Header returns EnvelopeMagic, the header length and the header: the
// plaintext to seal.
func (e *Envelope) Header() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	enc, err := marshal(e)
	if err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if len(enc) > MaxEnvelopeHeader {
		return nil, errors.New("envelope: header too large")
	}
	out := make([]byte, 0, len(EnvelopeMagic)+binary.MaxVarintLen64+len(enc))
	out = append(out, EnvelopeMagic...)
	out = binary.AppendUvarint(out, uint64(len(enc)))
	return append(out, enc...), nil
}

// ReadEnvelope reads and validates an envelope from a sealed envelope's
// plaintext, reading no further than the envelope's last byte.
func ReadEnvelope(r io.Reader) (*Envelope, error) {
	magic := make([]byte, len(EnvelopeMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return nil, fmt.Errorf("envelope: %w", noEOF(err))
	}
	if string(magic) != EnvelopeMagic {
		return nil, errors.New("envelope: not a BlockMRS record (bad magic)")
	}
	n, err := ReadMinimalUvarint(byteReader{r})
	if err != nil {
		return nil, fmt.Errorf("envelope: header length: %w", noEOF(err))
	}
	if n == 0 || n > MaxEnvelopeHeader {
		return nil, fmt.Errorf("envelope: header length %d out of range", n)
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("envelope: header: %w", noEOF(err))
	}
	var e Envelope
	if err := unmarshalStrict(hdr, &e); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// byteReader reads one byte at a time without buffering ahead, so
// nothing past a varint is consumed.
type byteReader struct{ r io.Reader }

func (b byteReader) ReadByte() (byte, error) {
	var one [1]byte
	_, err := io.ReadFull(b.r, one[:])
	return one[0], err
}

// countingByteReader counts the bytes read through it.
type countingByteReader struct {
	r io.ByteReader
	n int
}

func (b *countingByteReader) ReadByte() (byte, error) {
	c, err := b.r.ReadByte()
	if err == nil {
		b.n++
	}
	return c, err
}

// ParseEnvelope decodes the whole plaintext of a sealed envelope; trailing
// bytes are an error.
func ParseEnvelope(plain []byte) (*Envelope, error) {
	r := bytes.NewReader(plain)
	e, err := ReadEnvelope(r)
	if err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, errors.New("envelope: trailing bytes after the header")
	}
	return e, nil
}
