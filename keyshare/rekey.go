package keyshare

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"filippo.io/age"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

// Revoke and re-key. Revoking stops future serving, but a revoked party
// that kept the record key can still decrypt the ciphertext wherever it
// finds it. Re-keying takes that ciphertext away: the subject decrypts
// the record, stores the same content under a fresh record key as a new
// record of her own that supersedes the old one, wraps the new key for
// every remaining reader (the old record's author, and her grantees with
// their expiry), and writes a rekey entry (protocol.Rekey) naming the old
// claim and the new record, all in one chain block. By the access policy
// (RuleServeRekeyed, RuleWantRekeyed, RuleDropRekeyed, RuleExportRekeyed)
// no node that holds her chain serves, fetches or exports the old CID
// from then on, and each drops its copy once it holds the new one.

// rekeyFact is a rekey entry: who wrote it (Via.Account), the claim it
// re-keys (the old record, its author and block) and the new record. It
// is kept in the facts of both records.
type rekeyFact struct {
	Via    EntryRef           `json:"via"`
	Record string             `json:"record"`
	Author protocol.AccountID `json:"author"`
	Block  string             `json:"block"`
	New    string             `json:"new"`
}

// RekeyLink is what a rekey entry says, as an access state shows it: on
// the old record (Access.Rekeyed) which version replaces it, on the new
// one (Access.RekeyOf) which record, written by whom, it re-keys.
type RekeyLink struct {
	// Record is the CID of the record re-keyed, New that of its new
	// version.
	Record string `json:"record"`
	New    string `json:"new"`
	// Author wrote the re-keyed record's entry, in chain block Block.
	Author protocol.AccountID `json:"author"`
	Block  string             `json:"block"`
	// Via is the rekey entry (on the subject's chain).
	Via EntryRef `json:"via"`
}

func (f *rekeyFact) link() *RekeyLink {
	return &RekeyLink{Record: f.Record, New: f.New, Author: f.Author, Block: f.Block, Via: f.Via}
}

// applyRekey adds a rekey entry to the facts of the record it re-keys and
// of the new record.
func (w *indexWriter) applyRekey(body *protocol.Rekey, ref EntryRef) error {
	rk := rekeyFact{Via: ref, Record: body.Record.String(), Author: protocol.AccountIDFromKey(body.Author), Block: body.Block.String(), New: body.New.String()}
	for _, c := range []cid.Cid{body.Record.Cid, body.New.Cid} {
		f, err := w.get(c)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(f.Rekeys, func(o rekeyFact) bool { return o.Via == ref }) {
			f.Rekeys = append(f.Rekeys, rk)
		}
		w.touch(ref.Account, c)
	}
	return nil
}

// Rekeyed is the result of re-keying one record.
type Rekeyed struct {
	// Record is the record re-keyed; New its new version (the record
	// that replaces it), Block the chain block holding the new record
	// entry and its rekey entry.
	Record cid.Cid
	New    cid.Cid
	Block  cid.Cid
	// Revoked tells whether the block also revoked the account given
	// (false when it was revoked already).
	Revoked bool
	// Skipped is set when the record was re-keyed before (New is that
	// version): nothing was written.
	Skipped bool
	// Readers are the accounts the new version is wrapped for besides
	// the subject.
	Readers []protocol.AccountID
}

// RekeyCheck checks that k may re-key record c, revoking account from
// (empty: revoke nobody) first, without writing anything: k is its
// subject, from is a grantee of it or was revoked from it already, and
// its content is on this node. It returns the access state re-keying
// works from; a record re-keyed already has Rekeyed set.
func (r *Repo) RekeyCheck(ctx context.Context, k *Keys, c cid.Cid, from protocol.AccountID) (*Access, error) {
	a, err := r.AccessFor(ctx, c, k.ID)
	if err != nil {
		return nil, err
	}
	if d := changeRecord(a, k.ID, "re-key"); !d.Allow {
		return nil, fmt.Errorf("%s: %w", d.Reason, ErrNotSubject)
	}
	if a.Rekeyed != nil {
		if from != "" && !slices.ContainsFunc(a.Revoked, func(rd Reader) bool { return rd.Account == from }) {
			return nil, fmt.Errorf("%s was re-keyed already as %s: revoke %s from that version", c, a.Rekeyed.New, from)
		}
		return a, nil
	}
	if from != "" {
		rd, ok := a.Reader(from)
		switch {
		case ok && rd.Role != "grantee":
			return nil, fmt.Errorf("%s: %s is the record's %s, not a grantee", c, from, rd.Role)
		case !ok && !slices.ContainsFunc(a.Revoked, func(rd Reader) bool { return rd.Account == from }):
			return nil, fmt.Errorf("%s: %s has no grant to revoke", c, from)
		}
	}
	if has, err := r.st.Blockstore().Has(ctx, c); err != nil {
		return nil, err
	} else if !has {
		return nil, fmt.Errorf("%s: its content is not on this node yet, so it cannot be re-encrypted: %w", c, store.ErrMissing)
	}
	return a, nil
}

// ErrNotSubject is returned when an account other than a record's subject
// tries to change who may read it.
var ErrNotSubject = errors.New("not the record's subject")

// Rekey revokes account from (if given and not revoked already) from
// record c and re-keys it (see the file comment): one chain block holds
// the revoke entry, an ack if the record is another author's that k has
// not acknowledged, the new record entry (keys for k and for the old
// record's author), the rekey entry, and a grant entry for each remaining
// grantee with its expiry. The new version keeps the old one's title,
// kind, media type, file name and clinical fields; it is checked to hold
// the same bytes before anything is signed. Then this node drops the old
// ciphertext (RuleDropRekeyed). A record re-keyed already is skipped.
func (r *Repo) Rekey(ctx context.Context, k *Keys, c cid.Cid, from protocol.AccountID) (Rekeyed, error) {
	p, out, err := r.prepareRekey(ctx, k, c, from)
	if err != nil || p == nil {
		return out, err
	}
	if out.Block, err = r.commitRekeys(ctx, k, []*rekeyPrep{p}); err != nil {
		return out, err
	}
	if _, err := r.dropRekeyed(ctx, c); err != nil {
		return out, fmt.Errorf("re-keyed %s as %s, but removing the old copy failed (the daemon retries): %w", c, out.New, err)
	}
	return out, nil
}

// rekeyPrep is one record's re-key ready to commit: its new version
// stored (pinned, under an add marker) and the entries of its chain block.
type rekeyPrep struct {
	out     Rekeyed
	old     *Access // the claim re-keyed
	added   reencryption
	entries []protocol.Entry
}

// prepareRekey does all of Rekey for record c but the commit: it checks
// (RekeyCheck), stores the new version and builds the block's entries.
// A record re-keyed before gives no prep and out.Skipped. The caller
// hands the prep to commitRekeys, which releases it.
func (r *Repo) prepareRekey(ctx context.Context, k *Keys, c cid.Cid, from protocol.AccountID) (*rekeyPrep, Rekeyed, error) {
	out := Rekeyed{Record: c}
	a, err := r.RekeyCheck(ctx, k, c, from)
	if err != nil {
		return nil, out, err
	}
	if a.Rekeyed != nil {
		out.Skipped = true
		out.New, _ = cid.Decode(a.Rekeyed.New)
		return nil, out, nil
	}
	env, key, opened, err := r.openView(ctx, k, c)
	if err != nil {
		return nil, out, err
	}
	if opened.Subject != k.ID {
		return nil, out, fmt.Errorf("%s opens for you only under a claim about %s: %w", c, opened.Subject, ErrNotSubject)
	}
	readers, err := r.remainingReaders(ctx, opened, k.ID, from)
	if err != nil {
		return nil, out, err
	}
	added, err := r.reencrypt(ctx, c, key)
	if err != nil {
		return nil, out, err
	}
	p := &rekeyPrep{old: opened, added: added}
	if p.entries, err = r.rekeyEntries(ctx, k, opened, env, added, readers, from); err != nil {
		p.release(ctx, r, false)
		return nil, out, err
	}
	out.New, out.Revoked = added.New, from != "" && slices.ContainsFunc(opened.Readers, func(rd Reader) bool { return rd.Account == from })
	for _, rd := range readers {
		out.Readers = append(out.Readers, rd.Account)
	}
	p.out = out
	return p, out, nil
}

// remainingReader is one account the new version is wrapped for, and
// how: in the record entry (the old record's author) or by a grant
// entry with the old grant's expiry.
type remainingReader struct {
	Account protocol.AccountID
	info    AccountInfo
	grant   bool
	expires time.Time
	// scope is the standing grant the reader reads the old record under
	// ("" for none): the new version's key is given under it too, so
	// that ending the standing grant ends this version as well.
	scope string
}

// remainingReaders returns the readers of claim a but subject and from,
// with what the new version gives each.
func (r *Repo) remainingReaders(ctx context.Context, a *Access, subject, from protocol.AccountID) ([]remainingReader, error) {
	var out []remainingReader
	for _, rd := range a.Readers {
		if rd.Account == subject || rd.Account == from {
			continue
		}
		info, err := r.Account(ctx, rd.Account)
		if err != nil {
			return nil, fmt.Errorf("reader %s: %w", rd.Account, err)
		}
		out = append(out, remainingReader{Account: rd.Account, info: info, grant: rd.Role == "grantee", expires: rd.Expires, scope: rd.Scope})
	}
	return out, nil
}

// reencryption is a record's content stored again under a new key.
type reencryption struct {
	New    cid.Cid
	Key    *age.X25519Identity
	marker datastore.Key
}

// reencrypt decrypts record c with key and stores the plaintext as a new,
// pinned record under a fresh key, then reads the new one back and checks
// it holds the same bytes. An add marker (adding.go) covers a crash
// before the new record is claimed; the caller clears it.
func (r *Repo) reencrypt(ctx context.Context, c cid.Cid, key *age.X25519Identity) (reencryption, error) {
	rc, err := r.st.Decrypt(ctx, c, key)
	if err != nil {
		return reencryption{}, fmt.Errorf("%s: decrypt: %w", c, err)
	}
	defer rc.Close()
	marker, err := r.markAdding(ctx)
	if err != nil {
		return reencryption{}, err
	}
	oldSum := sha256.New()
	added, err := r.st.Add(ctx, io.TeeReader(rc, oldSum))
	if err != nil {
		r.clearAdding(ctx, marker)
		return reencryption{}, fmt.Errorf("%s: store the new version: %w", c, err)
	}
	out := reencryption{New: added.CID, Key: added.Key, marker: marker}
	fail := func(err error) (reencryption, error) {
		r.dropUnclaimed(ctx, added.CID)
		r.clearAdding(ctx, marker)
		return reencryption{}, err
	}
	newSum, err := r.plainSum(ctx, added.CID, added.Key)
	if err != nil {
		return fail(fmt.Errorf("%s: read the new version back: %w", c, err))
	}
	if !bytes.Equal(newSum, oldSum.Sum(nil)) {
		return fail(fmt.Errorf("%s: the new version does not hold the same bytes", c))
	}
	if err := r.IndexRecordBlocks(ctx, added.CID); err != nil {
		return fail(err)
	}
	return out, nil
}

// plainSum returns the SHA-256 of record c's plaintext, decrypted with key.
func (r *Repo) plainSum(ctx context.Context, c cid.Cid, key *age.X25519Identity) ([]byte, error) {
	rc, err := r.st.Decrypt(ctx, c, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// rekeyEntries builds the entries of a re-key's chain block.
func (r *Repo) rekeyEntries(ctx context.Context, k *Keys, old *Access, env *protocol.Envelope, added reencryption, readers []remainingReader, from protocol.AccountID) ([]protocol.Entry, error) {
	var entries []protocol.Entry
	if from != "" && slices.ContainsFunc(old.Readers, func(rd Reader) bool { return rd.Account == from }) {
		entries = append(entries, protocol.NewEntry(&protocol.Revoke{From: keyOf(from), Records: []protocol.Link{protocol.NewLink(old.Record)}}))
	}
	if ack := r.ackFor(ctx, k, old); ack != nil {
		entries = append(entries, protocol.NewEntry(ack))
	}
	sup := protocol.NewLink(old.Record)
	nenv := &protocol.Envelope{Title: env.Title, Kind: env.Kind, MediaType: env.MediaType, FileName: env.FileName, FHIR: env.FHIR,
		Author: k.Public(), Subject: k.Public(), Created: r.now().UnixMilli(), Supersedes: &sup}
	hdr, err := nenv.Header()
	if err != nil {
		return nil, err
	}
	self, err := r.Account(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	// The record entry wraps the key for k and the old record's author;
	// grantees get it in grant entries with their grants' expiry.
	inEntry := []AccountInfo{self}
	for _, rr := range readers {
		if !rr.grant {
			inEntry = append(inEntry, rr.info)
		}
	}
	rec, err := newRecordEntry(hdr, added.Key, added.New, k.Public(), &sup, inEntry, func(id protocol.AccountID) []byte { return keyOf(id) })
	if err != nil {
		return nil, err
	}
	var grants []protocol.Entry
	for _, rr := range readers {
		if !rr.grant {
			continue
		}
		wrapped, err := wrapKey(added.Key, rr.info)
		if err != nil {
			return nil, err
		}
		keys := []protocol.RecordKey{{Record: protocol.NewLink(added.New), Key: wrapped}}
		if rr.scope != "" {
			// Its expiry is the standing grant's, on the chain already.
			grants = append(grants, protocol.NewEntry(&protocol.ScopedKeys{To: keyOf(rr.Account), Scope: rr.scope, Keys: keys}))
			continue
		}
		g := &protocol.Grant{To: keyOf(rr.Account), Keys: keys}
		if !rr.expires.IsZero() {
			g.Expires = rr.expires.UnixMilli()
		}
		grants = append(grants, protocol.NewEntry(g))
	}
	blockCID, err := cid.Decode(old.Entry.Block)
	if err != nil {
		return nil, fmt.Errorf("%s: block of its record entry: %w", old.Record, err)
	}
	rk := &protocol.Rekey{Record: protocol.NewLink(old.Record), Author: keyOf(old.Author), Block: protocol.NewLink(blockCID), New: protocol.NewLink(added.New)}
	entries = append(entries, protocol.NewEntry(rec), protocol.NewEntry(rk))
	entries = append(entries, grants...)
	if len(entries) > protocol.MaxEntriesPerBlock {
		return nil, fmt.Errorf("%s: %d remaining readers do not fit in one chain block", old.Record, len(readers))
	}
	return entries, nil
}

// dropRekeyed removes this node's copy of each record in recs that a
// claim counting here says its subject re-keyed, once the new version is
// held here (keepRekeyed), and returns those it removed.
func (r *Repo) dropRekeyed(ctx context.Context, recs ...cid.Cid) ([]cid.Cid, error) {
	v, err := r.vouchSet(ctx)
	if err != nil {
		return nil, err
	}
	var drop []cid.Cid
	for _, c := range recs {
		as, err := r.accessAll(ctx, c)
		if err != nil {
			return nil, err
		}
		d, ok := keepRekeyed(as, v, r.pinned(ctx))
		if !ok || d.Allow {
			continue
		}
		if err := r.st.Unpin(ctx, c); err != nil && !errors.Is(err, store.ErrNotPinned) {
			return drop, err
		}
		drop = append(drop, c)
	}
	if err := r.deleteRecords(ctx, drop); err != nil {
		return drop, fmt.Errorf("remove re-keyed records: %w", err)
	}
	return drop, nil
}

// pinned returns a test of whether a record is held whole here (pinned;
// a fetch pins last).
func (r *Repo) pinned(ctx context.Context) func(cid.Cid) bool {
	return func(c cid.Cid) bool {
		ok, err := r.st.IsPinned(ctx, c)
		return err == nil && ok
	}
}

// rekeyPartners returns, for the records in recs, the records their
// rekey entries name (the old record of a new version, the new version
// of an old record), so that a change to one is looked at for both:
// the arrival of a new version is what lets a node drop the old one.
func (r *Repo) rekeyPartners(ctx context.Context, recs []cid.Cid) ([]cid.Cid, error) {
	seen := map[cid.Cid]bool{}
	for _, c := range recs {
		seen[c] = true
	}
	out := slices.Clone(recs)
	for _, c := range recs {
		f, err := r.facts(ctx, c)
		if err != nil {
			return nil, err
		}
		for _, rk := range f.Rekeys {
			for _, s := range []string{rk.Record, rk.New} {
				if p, err := cid.Decode(s); err == nil && !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			}
		}
	}
	return out, nil
}

// rekeyedMissing returns err, or, when it says record c is missing and c
// was re-keyed, an error naming the new version to read instead.
func (r *Repo) rekeyedMissing(ctx context.Context, c cid.Cid, err error) error {
	if !errors.Is(err, store.ErrMissing) {
		return err
	}
	as, aerr := r.accessAll(ctx, c)
	if aerr != nil {
		return err
	}
	v, verr := r.vouchSet(ctx)
	if verr != nil {
		return err
	}
	if a := rekeyedAmong(countingClaims(as, v)); a != nil {
		return fmt.Errorf("%s was re-keyed by its subject: its content is in the new version %s, and this one is no longer kept or served: %w", c, a.Rekeyed.New, err)
	}
	return err
}
