package keyshare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"filippo.io/age"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/internal/fastx25519"
	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

// ErrNoAccess is returned when an account may not decrypt a record.
var ErrNoAccess = errors.New("no access to this record")

// NewRecord describes a record to add.
type NewRecord struct {
	Title      string
	Kind       protocol.Kind
	MediaType  string
	FileName   string
	Subject    protocol.AccountID // whom the record is about; empty means the author
	Supersedes cid.Cid            // the record this one replaces, if any
	// CC lists further accounts the author shares the record with from
	// the start (the ordering clinician of a lab result, say). They read
	// it as grantees until the subject revokes them.
	CC []protocol.AccountID
	// FHIR, for a record of kind fhir holding one resource, is what the
	// sealed envelope says of it (resource type, id, fullUrl, clinical
	// date, code, categories, digest): listings and standing grants judge
	// the record by it. Its Digest, when set, must be the SHA-256 of
	// Body's bytes.
	FHIR *protocol.Clinical
	Body io.Reader
}

// AddRecord encrypts a record authored by k, stores it, and appends a
// record entry to k's chain with the record key wrapped for its readers
// (recordReaders: the subject, the author, nr.CC). It is a batch of one
// (see Batch): FHIR records are checked before anything is stored, and a
// failure leaves nothing behind.
func (r *Repo) AddRecord(ctx context.Context, k *Keys, nr NewRecord) (cid.Cid, error) {
	b, err := r.NewBatch(ctx, k)
	if err != nil {
		return cid.Undef, err
	}
	defer b.Abort()
	if _, err := b.Add(nr); err != nil {
		return cid.Undef, unbatch(err)
	}
	out, err := b.Commit()
	if err != nil {
		return cid.Undef, unbatch(err)
	}
	return out[0], nil
}

// unbatch returns what a batch of one failed on, without the record's
// index.
func unbatch(err error) error {
	var be *BatchError
	if errors.As(err, &be) {
		return be.Err
	}
	return err
}

// seal age-encrypts a small plaintext (a record key, an envelope) to one
// recipient, as a binary age file.
func seal(plain []byte, to age.Recipient) ([]byte, error) {
	// Room for age's header and tag, so that the result is not mostly
	// spare capacity (a batch holds thousands until it commits).
	var buf bytes.Buffer
	buf.Grow(len(plain) + 256)
	w, err := age.Encrypt(&buf, to)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(plain); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// unseal decrypts what seal made, reading at most limit bytes.
func unseal(sealed []byte, id age.Identity, limit int64) ([]byte, error) {
	r, err := age.Decrypt(bytes.NewReader(sealed), id)
	if err != nil {
		return nil, err
	}
	plain, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(plain)) > limit {
		return nil, fmt.Errorf("sealed data over %d bytes", limit)
	}
	return plain, nil
}

// wrapKey encrypts a record key to an account's age recipient, with
// fastx25519's faster ephemeral share (the stanza is age's own).
func wrapKey(key *age.X25519Identity, to AccountInfo) ([]byte, error) {
	rcpt, err := fastx25519.Parse(to.Recipient)
	if err != nil {
		return nil, fmt.Errorf("recipient of %s: %w", to.ID, err)
	}
	return seal([]byte(key.String()), rcpt)
}

// unwrapKey decrypts a wrapped record key with an account's identity.
func unwrapKey(wrapped []byte, id age.Identity) (*age.X25519Identity, error) {
	s, err := unseal(wrapped, id, 256)
	if err != nil {
		return nil, fmt.Errorf("unwrap record key: %w", err)
	}
	return age.ParseX25519Identity(string(s))
}

// RecordKey returns the key of record c for k, if k may read it now, and
// the claim it read it under. It tries the claims of k's view in order
// (viewOrder in policy.go) and takes the first whose key for k opens the
// record and whose envelope agrees with the claim, so a false claim naming
// k cannot change what k reads, nor under which author and title.
func (r *Repo) RecordKey(ctx context.Context, k *Keys, c cid.Cid) (*age.X25519Identity, *Access, error) {
	_, key, a, err := r.openView(ctx, k, c)
	return key, a, err
}

// Envelope returns record c's metadata for k, if k may read it now,
// checking that it names the same author, subject and predecessor as the
// signed record entry it is read under.
func (r *Repo) Envelope(ctx context.Context, k *Keys, c cid.Cid) (*protocol.Envelope, *age.X25519Identity, error) {
	env, key, _, err := r.openView(ctx, k, c)
	return env, key, err
}

// openView opens record c for k under the first claim of k's view that
// opens (see RecordKey). When none does, the error is the first claim's.
func (r *Repo) openView(ctx context.Context, k *Keys, c cid.Cid) (*protocol.Envelope, *age.X25519Identity, *Access, error) {
	view, all, err := r.viewOf(ctx, c, k.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(view) == 0 {
		if !all[0].Known {
			return nil, nil, all[0], fmt.Errorf("%s: unknown record (no verified chain holds its entry)", c)
		}
		return nil, nil, all[0], fmt.Errorf("%s: %w", c, ErrNoAccess)
	}
	var firstErr error
	for _, a := range view {
		env, key, err := r.openClaim(ctx, k, a)
		if err == nil {
			return env, key, a, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, nil, view[0], firstErr
}

// openClaim opens record a.Record for k under claim a: unwraps k's key,
// opens the sealed envelope with it and checks that it agrees with the
// claim. For a contested record held here it also checks that the key
// opens the record itself (its age header), since anyone can seal an
// envelope to a key of their own making.
func (r *Repo) openClaim(ctx context.Context, k *Keys, a *Access) (*protocol.Envelope, *age.X25519Identity, error) {
	c := a.Record
	if d := readDecision(a, k.ID); !d.Allow {
		if d.Rule == RuleReadNone {
			return nil, nil, fmt.Errorf("%s: %w", c, ErrNoAccess)
		}
		return nil, nil, fmt.Errorf("%s: %s: %w", c, d.Reason, ErrNoAccess)
	}
	rd, _ := a.Reader(k.ID)
	o, err := k.openEnvelope(rd.key, a.meta)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c, err)
	}
	if o.author != a.Author || o.subject != a.Subject {
		return nil, nil, fmt.Errorf("%s: envelope names a different author or subject than the signed record entry", c)
	}
	envSup := ""
	if o.env.Supersedes != nil {
		envSup = o.env.Supersedes.String()
	}
	if envSup != a.Supersedes {
		return nil, nil, fmt.Errorf("%s: envelope and signed record entry disagree on the record it supersedes", c)
	}
	if a.Contested {
		if err := r.keyOpens(ctx, c, o.key); err != nil {
			return nil, nil, err
		}
	}
	return o.envelope(), o.key, nil
}

// keyOpens checks that key opens the age header of record c, when the
// repo holds its first blocks (a record not here yet cannot be checked).
func (r *Repo) keyOpens(ctx context.Context, c cid.Cid, key *age.X25519Identity) error {
	err := r.keyOpensHeld(ctx, c, key)
	if errors.Is(err, store.ErrMissing) {
		return nil
	}
	return err
}

// keyOpensHeld checks that key opens the age header of record c, which
// the repo must hold.
func (r *Repo) keyOpensHeld(ctx context.Context, c cid.Cid, key *age.X25519Identity) error {
	rc, err := r.st.Decrypt(ctx, c, key)
	if errors.Is(err, store.ErrMissing) {
		return fmt.Errorf("%s: %w", c, err)
	}
	if err != nil {
		return fmt.Errorf("%s: the key of this record entry does not open the record: %w", c, err)
	}
	return rc.Close()
}

// OpenRecord decrypts record c for k: its envelope and a stream of its
// content. The caller must read the content to EOF (age authenticates as
// it goes) and close it.
//
// The read is recorded in the repo's audit log (AuditRead) before the
// content is returned; a read the log cannot record fails.
func (r *Repo) OpenRecord(ctx context.Context, k *Keys, c cid.Cid) (*protocol.Envelope, io.ReadCloser, error) {
	env, key, a, err := r.openView(ctx, k, c)
	if err != nil {
		return nil, nil, err
	}
	rc, err := r.st.Decrypt(ctx, c, key)
	if err != nil {
		return nil, nil, r.rekeyedMissing(ctx, c, err)
	}
	if err := r.auditRead(ctx, k.ID, a); err != nil {
		rc.Close()
		return nil, nil, err
	}
	return env, rc, nil
}

// subjectRecords checks that k is the subject of every record and returns
// their access state.
func (r *Repo) subjectRecords(ctx context.Context, k *Keys, records []cid.Cid, verb string) ([]*Access, error) {
	if len(records) == 0 {
		return nil, errors.New("no records given")
	}
	out := make([]*Access, 0, len(records))
	for _, c := range records {
		a, err := r.AccessFor(ctx, c, k.ID)
		if err != nil {
			return nil, err
		}
		if d := changeRecord(a, k.ID, verb); !d.Allow {
			return nil, errors.New(d.Reason)
		}
		out = append(out, a)
	}
	return out, nil
}

// Grant shares records with account to, until expires (zero: no expiry).
// Only the records' subject may grant. For a record someone else authored
// and k has not acknowledged yet, an ack entry goes in the same block.
func (r *Repo) Grant(ctx context.Context, k *Keys, records []cid.Cid, to protocol.AccountID, expires time.Time) (cid.Cid, error) {
	grantee, err := r.Account(ctx, to)
	if err != nil {
		return cid.Undef, fmt.Errorf("grantee: %w", err)
	}
	if to == k.ID {
		return cid.Undef, errors.New("cannot grant to yourself")
	}
	if !expires.IsZero() && !expires.After(r.now()) {
		return cid.Undef, errors.New("expiry is in the past")
	}
	as, err := r.subjectRecords(ctx, k, records, "grant")
	if err != nil {
		return cid.Undef, err
	}
	g := &protocol.Grant{To: keyOf(to)}
	if !expires.IsZero() {
		g.Expires = expires.UnixMilli()
	}
	var entries []protocol.Entry
	for _, a := range as {
		key, _, err := r.RecordKey(ctx, k, a.Record)
		if err != nil {
			return cid.Undef, err
		}
		wrapped, err := wrapKey(key, grantee)
		if err != nil {
			return cid.Undef, err
		}
		g.Keys = append(g.Keys, protocol.RecordKey{Record: protocol.NewLink(a.Record), Key: wrapped})
		if ack := r.ackFor(ctx, k, a); ack != nil {
			entries = append(entries, protocol.NewEntry(ack))
		}
	}
	entries = append(entries, protocol.NewEntry(g))
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appendBlock(ctx, k, entries)
}

// ackFor returns an ack entry when k is the subject of a record another
// account authored, has not acknowledged it yet, and k's key under that
// claim opens the record and its envelope (the proof an ack stands for;
// see policy.go). A claim that does not open is never acknowledged.
func (r *Repo) ackFor(ctx context.Context, k *Keys, a *Access) *protocol.Ack {
	if a.Author == k.ID || a.Subject != k.ID || a.Entry == nil || a.Proof != ProofPending {
		return nil
	}
	if _, key, err := r.openClaim(ctx, k, a); err != nil {
		return nil
	} else if err := r.keyOpensHeld(ctx, a.Record, key); err != nil {
		return nil
	}
	// That the key opens proves only that the claim's author holds the
	// record key, which a grantee (even a revoked one) does. So no claim
	// is acknowledged on a CID where k already has a proven claim (her
	// own record, or one she acknowledged), nor when another pending
	// claim about k opens for her too: which one is true is not for her
	// node to guess.
	as, err := r.accessAll(ctx, a.Record)
	if err != nil {
		return nil
	}
	for _, o := range as {
		if !o.Known || o.Entry == nil || *o.Entry == *a.Entry || o.Subject != k.ID {
			continue
		}
		if o.proven() {
			return nil
		}
		if _, _, err := r.openClaim(ctx, k, o); err == nil {
			return nil
		}
	}
	blockCID, err := cid.Decode(a.Entry.Block)
	if err != nil {
		return nil
	}
	return &protocol.Ack{Record: protocol.NewLink(a.Record), Author: keyOf(a.Author), Block: protocol.NewLink(blockCID)}
}

// Acknowledge appends ack entries for the claims about k that others
// authored, k has not acknowledged yet, and whose key for k opens the
// record this repo holds (see ackFor). It returns how many it wrote.
//
// With only given, it looks at those records alone (the ones a chain
// change touched), so its cost follows the change.
func (r *Repo) Acknowledge(ctx context.Context, k *Keys, only ...cid.Cid) (int, error) {
	recs, err := r.recordsAmong(ctx, k.ID, only)
	if err != nil {
		return 0, err
	}
	var entries []protocol.Entry
	for c := range recs {
		as, err := r.accessAll(ctx, c)
		if err != nil {
			return 0, err
		}
		for _, a := range as {
			if ack := r.ackFor(ctx, k, a); ack != nil {
				entries = append(entries, protocol.NewEntry(ack))
			}
		}
	}
	if len(entries) == 0 {
		return 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for start := 0; start < len(entries); start += protocol.MaxEntriesPerBlock {
		end := min(start+protocol.MaxEntriesPerBlock, len(entries))
		if _, err := r.appendBlock(ctx, k, entries[start:end]); err != nil {
			return start, err
		}
	}
	return len(entries), nil
}

// Revoke ends account from's access to records. Only the subject may
// revoke. It stops future serving and future versions; it cannot make
// anyone forget a key already delivered.
func (r *Repo) Revoke(ctx context.Context, k *Keys, records []cid.Cid, from protocol.AccountID) (cid.Cid, error) {
	as, err := r.subjectRecords(ctx, k, records, "revoke")
	if err != nil {
		return cid.Undef, err
	}
	for _, a := range as {
		rd, ok := a.Reader(from)
		if !ok || rd.Role != "grantee" {
			if ok {
				return cid.Undef, fmt.Errorf("%s: %s is the record's %s, not a grantee", a.Record, from, rd.Role)
			}
			return cid.Undef, fmt.Errorf("%s: %s has no grant to revoke", a.Record, from)
		}
	}
	rv := &protocol.Revoke{From: keyOf(from), Records: protocol.Links(records)}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appendBlock(ctx, k, []protocol.Entry{protocol.NewEntry(rv)})
}

// Hide hides records from the subject's listings (hidden=true) or shows
// them again (hidden=false). Only the subject may hide. Hiding does not
// revoke existing grants.
func (r *Repo) Hide(ctx context.Context, k *Keys, records []cid.Cid, hidden bool) (cid.Cid, error) {
	if _, err := r.subjectRecords(ctx, k, records, "hide"); err != nil {
		return cid.Undef, err
	}
	var body protocol.EntryBody = &protocol.Hide{Records: protocol.Links(records)}
	if !hidden {
		body = &protocol.Unhide{Records: protocol.Links(records)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appendBlock(ctx, k, []protocol.Entry{protocol.NewEntry(body)})
}
