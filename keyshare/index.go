package keyshare

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// The access index keeps, per record CID, every fact verified chains state
// about it (the record entry, wrapped keys, grants, revocations, hides),
// and per account the records it appears in. Access is evaluated from the
// facts when asked, so the answer never depends on the order in which
// chains arrived, and no chain is rescanned to answer.

func keyRecordFacts(c cid.Cid) datastore.Key {
	return datastore.NewKey("/keyshare/idx/rec/" + c.String())
}
func keyAccountRecord(id protocol.AccountID, c cid.Cid) datastore.Key {
	return datastore.NewKey("/keyshare/idx/acct/" + string(id) + "/" + c.String())
}

// EntryRef points at one entry of one chain block.
type EntryRef struct {
	Account protocol.AccountID `json:"account"`
	Block   string             `json:"block"` // CID of the chain block
	Seq     uint64             `json:"seq"`
	Index   int                `json:"index"` // position of the entry in the block
	Time    int64              `json:"time"`  // the block's time, Unix ms
}

// String formats the reference as "<block CID>#<index>".
func (e EntryRef) String() string { return fmt.Sprintf("%s#%d", e.Block, e.Index) }

func (e EntryRef) before(o EntryRef) bool {
	if e.Seq != o.Seq {
		return e.Seq < o.Seq
	}
	return e.Index < o.Index
}

type keyFact struct {
	To      protocol.AccountID `json:"to"`
	Key     []byte             `json:"key"`
	Expires int64              `json:"expires,omitempty"`
	Via     EntryRef           `json:"via"`
	Grant   bool               `json:"grant,omitempty"` // from a grant entry (else the record entry)
}

// ackFact is an ack entry: who acknowledged (Via.Account), and the claim
// acknowledged (its author and chain block).
type ackFact struct {
	Via    EntryRef           `json:"via"`
	Author protocol.AccountID `json:"author"`
	Block  string             `json:"block"`
}

// acknowledges tells whether the ack was written by the claim's subject
// about exactly this claim (its author and block), so an ack of one
// author's record says nothing about another author's claim on the CID.
func (a ackFact) acknowledges(cl *claimFact) bool {
	return a.Via.Account == cl.Subject && a.Author == cl.Author && a.Block == cl.Entry.Block
}

type revokeFact struct {
	From protocol.AccountID `json:"from"`
	Via  EntryRef           `json:"via"`
}

type hideFact struct {
	Hidden bool     `json:"hidden"`
	Via    EntryRef `json:"via"`
}

// claimFact is one record entry: an author's signed claim that a CID is a
// record about a subject.
type claimFact struct {
	Author     protocol.AccountID `json:"author"`
	Subject    protocol.AccountID `json:"subject"`
	Entry      EntryRef           `json:"entry"`
	Meta       []byte             `json:"meta"` // sealed envelope
	Supersedes string             `json:"supersedes,omitempty"`
}

// recordFacts is everything verified chains say about one record. Normally
// one record entry claims a CID; anyone who learns a CID can write another
// claim, so every claim is kept and evaluated on its own (see evaluate).
type recordFacts struct {
	Claims  []claimFact  `json:"claims,omitempty"`
	Keys    []keyFact    `json:"keys,omitempty"`
	Revokes []revokeFact `json:"revokes,omitempty"`
	Hides   []hideFact   `json:"hides,omitempty"`
	Acks    []ackFact    `json:"acks,omitempty"`
}

// indexWriter accumulates fact changes for a batch of blocks.
type indexWriter struct {
	ctx   context.Context
	ds    datastore.Read
	facts map[cid.Cid]*recordFacts
	accts map[datastore.Key]bool
}

func newIndexWriter(ctx context.Context, ds datastore.Read) *indexWriter {
	return &indexWriter{ctx: ctx, ds: ds, facts: map[cid.Cid]*recordFacts{}, accts: map[datastore.Key]bool{}}
}

func (w *indexWriter) get(c cid.Cid) (*recordFacts, error) {
	if f, ok := w.facts[c]; ok {
		return f, nil
	}
	f := &recordFacts{}
	if w.ds != nil {
		if _, err := getJSON(w.ctx, w.ds, keyRecordFacts(c), f); err != nil {
			return nil, err
		}
	}
	w.facts[c] = f
	return f, nil
}

func (w *indexWriter) touch(id protocol.AccountID, c cid.Cid) {
	w.accts[keyAccountRecord(id, c)] = true
}

// apply adds the facts of one verified block.
func (w *indexWriter) apply(b *protocol.Block, blockCID cid.Cid) error {
	author := b.AuthorID()
	for i, e := range b.Entries {
		ref := EntryRef{Account: author, Block: blockCID.String(), Seq: b.Seq, Index: i, Time: b.Time}
		switch body := e.Body.(type) {
		case *protocol.Record:
			f, err := w.get(body.Record.Cid)
			if err != nil {
				return err
			}
			if hasClaim(f, ref) {
				continue // already applied
			}
			cl := claimFact{Author: author, Subject: body.SubjectID(), Entry: ref, Meta: body.Meta}
			if body.Supersedes != nil {
				cl.Supersedes = body.Supersedes.String()
			}
			f.Claims = append(f.Claims, cl)
			w.touch(author, body.Record.Cid)
			w.touch(body.SubjectID(), body.Record.Cid)
			for _, k := range body.Keys {
				to := protocol.AccountIDFromKey(k.To)
				f.Keys = append(f.Keys, keyFact{To: to, Key: k.Key, Via: ref})
				w.touch(to, body.Record.Cid)
			}
		case *protocol.Grant:
			to := protocol.AccountIDFromKey(body.To)
			for _, k := range body.Keys {
				f, err := w.get(k.Record.Cid)
				if err != nil {
					return err
				}
				if hasRef(f, ref, to) {
					continue
				}
				f.Keys = append(f.Keys, keyFact{To: to, Key: k.Key, Expires: body.Expires, Via: ref, Grant: true})
				w.touch(to, k.Record.Cid)
				w.touch(author, k.Record.Cid)
			}
		case *protocol.Revoke:
			from := protocol.AccountIDFromKey(body.From)
			for _, rc := range body.Records {
				f, err := w.get(rc.Cid)
				if err != nil {
					return err
				}
				f.Revokes = append(f.Revokes, revokeFact{From: from, Via: ref})
				w.touch(author, rc.Cid)
			}
		case *protocol.Hide, *protocol.Unhide:
			hidden := e.Type == protocol.TypeHide
			var recs []protocol.Link
			if h, ok := body.(*protocol.Hide); ok {
				recs = h.Records
			} else {
				recs = body.(*protocol.Unhide).Records
			}
			for _, rc := range recs {
				f, err := w.get(rc.Cid)
				if err != nil {
					return err
				}
				f.Hides = append(f.Hides, hideFact{Hidden: hidden, Via: ref})
				w.touch(author, rc.Cid)
			}
		case *protocol.Ack:
			f, err := w.get(body.Record.Cid)
			if err != nil {
				return err
			}
			f.Acks = append(f.Acks, ackFact{Via: ref, Author: protocol.AccountIDFromKey(body.Author), Block: body.Block.String()})
			w.touch(author, body.Record.Cid)
		}
	}
	return nil
}

func hasClaim(f *recordFacts, ref EntryRef) bool {
	for _, c := range f.Claims {
		if c.Entry == ref {
			return true
		}
	}
	return false
}

func hasRef(f *recordFacts, ref EntryRef, to protocol.AccountID) bool {
	for _, k := range f.Keys {
		if k.Via == ref && k.To == to {
			return true
		}
	}
	return false
}

// write stores the accumulated facts in batch b.
func (w *indexWriter) write(b datastore.Write) error {
	for c, f := range w.facts {
		sortFacts(f)
		if err := putJSON(w.ctx, b, keyRecordFacts(c), f); err != nil {
			return err
		}
	}
	for k := range w.accts {
		if err := b.Put(w.ctx, k, nil); err != nil {
			return err
		}
	}
	return nil
}

// sortFacts puts facts in a canonical order so that the same chains give
// byte-identical index documents whatever order they were applied in.
func sortFacts(f *recordFacts) {
	refLess := func(a, b EntryRef) bool {
		if a.Account != b.Account {
			return a.Account < b.Account
		}
		return a.before(b)
	}
	sort.SliceStable(f.Keys, func(i, j int) bool {
		if f.Keys[i].Via != f.Keys[j].Via {
			return refLess(f.Keys[i].Via, f.Keys[j].Via)
		}
		return f.Keys[i].To < f.Keys[j].To
	})
	sort.SliceStable(f.Revokes, func(i, j int) bool {
		if f.Revokes[i].Via != f.Revokes[j].Via {
			return refLess(f.Revokes[i].Via, f.Revokes[j].Via)
		}
		return f.Revokes[i].From < f.Revokes[j].From
	})
	sort.SliceStable(f.Hides, func(i, j int) bool { return refLess(f.Hides[i].Via, f.Hides[j].Via) })
	sort.SliceStable(f.Acks, func(i, j int) bool { return refLess(f.Acks[i].Via, f.Acks[j].Via) })
	// Claims: earliest block time first, then block CID, so the "first"
	// claim is the same everywhere.
	sort.SliceStable(f.Claims, func(i, j int) bool {
		a, b := f.Claims[i].Entry, f.Claims[j].Entry
		if a.Time != b.Time {
			return a.Time < b.Time
		}
		if a.Block != b.Block {
			return a.Block < b.Block
		}
		return a.Index < b.Index
	})
}

// Reader is one account that may decrypt a record, and why.
type Reader struct {
	Account protocol.AccountID `json:"account"`
	// Role is "author", "subject" or "grantee".
	Role    string    `json:"role"`
	Via     EntryRef  `json:"via"`
	Expires time.Time `json:"expires,omitzero"`
	key     []byte
}

// Access is the access state of one record, evaluated at one moment.
type Access struct {
	Record cid.Cid `json:"cid"`
	// Known is false when no verified chain holds the record's entry:
	// then nothing about it can be trusted and Readers is empty.
	Known      bool               `json:"known"`
	Author     protocol.AccountID `json:"author,omitempty"`
	Subject    protocol.AccountID `json:"subject,omitempty"`
	Created    time.Time          `json:"created,omitzero"` // time of the record entry's block
	Supersedes string             `json:"supersedes,omitempty"`
	Entry      *EntryRef          `json:"entry,omitempty"`
	Hidden     bool               `json:"hidden"`
	// Acked tells whether the subject acknowledged a record someone else
	// authored (always true when the subject is the author).
	Acked   bool     `json:"acked"`
	Readers []Reader `json:"readers"`
	// Revoked lists accounts whose grant the subject revoked, with the
	// revoking entry; Expired those whose grant expired.
	Revoked []Reader `json:"revoked,omitempty"`
	Expired []Reader `json:"expired,omitempty"`
	// Problems lists entries that claim something about the record and
	// were not honoured (a grant by someone other than the subject, …).
	Problems []string `json:"problems,omitempty"`

	meta []byte // the sealed envelope of this record entry
}

// MarshalJSON writes the record CID as a plain string, like every other
// CID in the JSON this package produces.
func (a *Access) MarshalJSON() ([]byte, error) {
	type plain Access
	return json.Marshal(struct {
		Record string `json:"cid"`
		*plain
	}{a.Record.String(), (*plain)(a)})
}

// Reader returns id's reader entry and whether id may decrypt now.
func (a *Access) Reader(id protocol.AccountID) (Reader, bool) {
	for _, r := range a.Readers {
		if r.Account == id {
			return r, true
		}
	}
	return Reader{}, false
}

// evaluate turns facts into access state at time now: one Access per
// record entry claiming the CID, in claim order. Each claim is judged on
// its own terms (its author's wrapped keys, its subject's grants), so a
// second, false claim on someone's record cannot take the real subject's
// readers away; it can only give its own readers keys they cannot use.
// Every evaluation of a contested CID reports the contest as a problem.
func evaluate(c cid.Cid, f *recordFacts, now time.Time) []*Access {
	if len(f.Claims) == 0 {
		a := &Access{Record: c, Readers: []Reader{}}
		if len(f.Keys) > 0 || len(f.Revokes) > 0 {
			a.Problems = append(a.Problems, "no verified record entry: grants cannot be checked")
		}
		return []*Access{a}
	}
	out := make([]*Access, len(f.Claims))
	for i := range f.Claims {
		out[i] = evaluateClaim(c, f, &f.Claims[i], now)
		for j, other := range f.Claims {
			if j != i {
				out[i].Problems = append(out[i].Problems, fmt.Sprintf("another record entry claims this CID: %s by %s about %s", other.Entry, other.Author, other.Subject))
			}
		}
	}
	return out
}

// evaluateClaim evaluates access under one record entry.
func evaluateClaim(c cid.Cid, f *recordFacts, cl *claimFact, now time.Time) *Access {
	a := &Access{Record: c, Readers: []Reader{}, meta: cl.Meta}
	entry := cl.Entry
	a.Known, a.Author, a.Subject, a.Entry = true, cl.Author, cl.Subject, &entry
	a.Created = time.UnixMilli(cl.Entry.Time).UTC()
	a.Supersedes = cl.Supersedes
	a.Acked = cl.Author == cl.Subject
	for _, ack := range f.Acks {
		if ack.acknowledges(cl) {
			a.Acked = true
		}
	}

	type event struct {
		ref    EntryRef
		grant  *keyFact
		revoke bool
	}
	seen := map[protocol.AccountID]bool{}
	add := func(r Reader) {
		if !seen[r.Account] {
			seen[r.Account] = true
			a.Readers = append(a.Readers, r)
		}
	}
	// Keys from the record entry itself.
	for i := range f.Keys {
		k := &f.Keys[i]
		if k.Grant || k.Via != cl.Entry {
			continue
		}
		switch k.To {
		case cl.Author:
			add(Reader{Account: k.To, Role: "author", Via: k.Via, key: k.Key})
		case cl.Subject:
			add(Reader{Account: k.To, Role: "subject", Via: k.Via, key: k.Key})
		}
	}
	// Others the author shared with from the start count as grantees
	// whose grant precedes every entry of the subject's chain; then come
	// the subject's grants and revocations, in chain order.
	last := map[protocol.AccountID]event{}
	for i := range f.Keys {
		k := &f.Keys[i]
		if !k.Grant && k.Via == cl.Entry && k.To != cl.Author && k.To != cl.Subject {
			last[k.To] = event{grant: k}
		}
	}
	for i := range f.Keys {
		k := &f.Keys[i]
		if !k.Grant {
			continue
		}
		if k.Via.Account != cl.Subject {
			a.Problems = append(a.Problems, fmt.Sprintf("grant to %s by %s at %s ignored: only the subject may grant", k.To, k.Via.Account, k.Via))
			continue
		}
		if e, ok := last[k.To]; !ok || e.ref.before(k.Via) || e.ref == (EntryRef{}) {
			last[k.To] = event{ref: k.Via, grant: k}
		}
	}
	for _, rv := range f.Revokes {
		if rv.Via.Account != cl.Subject {
			a.Problems = append(a.Problems, fmt.Sprintf("revocation of %s by %s at %s ignored: only the subject may revoke", rv.From, rv.Via.Account, rv.Via))
			continue
		}
		if e, ok := last[rv.From]; !ok || e.ref.before(rv.Via) || e.ref == (EntryRef{}) {
			last[rv.From] = event{ref: rv.Via, revoke: true}
		}
	}
	grantees := make([]protocol.AccountID, 0, len(last))
	for id := range last {
		grantees = append(grantees, id)
	}
	sort.Slice(grantees, func(i, j int) bool { return grantees[i] < grantees[j] })
	for _, id := range grantees {
		e := last[id]
		switch {
		case e.revoke:
			if id != cl.Subject && id != cl.Author {
				a.Revoked = append(a.Revoked, Reader{Account: id, Role: "grantee", Via: e.ref})
			}
		case e.grant.Expires != 0 && !now.Before(time.UnixMilli(e.grant.Expires)):
			a.Expired = append(a.Expired, Reader{Account: id, Role: "grantee", Via: e.ref, Expires: time.UnixMilli(e.grant.Expires).UTC()})
		default:
			r := Reader{Account: id, Role: "grantee", Via: e.grant.Via, key: e.grant.Key}
			if e.grant.Expires != 0 {
				r.Expires = time.UnixMilli(e.grant.Expires).UTC()
			}
			add(r)
		}
	}
	for _, h := range f.Hides {
		if h.Via.Account != cl.Subject {
			a.Problems = append(a.Problems, fmt.Sprintf("hide by %s at %s ignored: only the subject may hide", h.Via.Account, h.Via))
			continue
		}
		a.Hidden = h.Hidden // facts are sorted in chain order
	}
	return a
}

// Access returns the access state of record c now, under its first
// record entry (normally its only one).
func (r *Repo) Access(ctx context.Context, c cid.Cid) (*Access, error) {
	as, err := r.accessAll(ctx, c)
	if err != nil {
		return nil, err
	}
	return as[0], nil
}

// AccessFor returns the access state of record c as it concerns account
// id: under the record entry that names id as subject, else as author,
// else as a reader, else the first.
func (r *Repo) AccessFor(ctx context.Context, c cid.Cid, id protocol.AccountID) (*Access, error) {
	as, err := r.accessAll(ctx, c)
	if err != nil {
		return nil, err
	}
	for _, match := range []func(*Access) bool{
		func(a *Access) bool { return a.Subject == id },
		func(a *Access) bool { return a.Author == id },
		func(a *Access) bool { _, ok := a.Reader(id); return ok },
	} {
		for _, a := range as {
			if a.Known && match(a) {
				return a, nil
			}
		}
	}
	return as[0], nil
}

func (r *Repo) accessAll(ctx context.Context, c cid.Cid) ([]*Access, error) {
	f := &recordFacts{}
	if _, err := getJSON(ctx, r.ds, keyRecordFacts(c), f); err != nil {
		return nil, err
	}
	return evaluate(c, f, r.now()), nil
}

// RecordsOf returns the access state of every record account id appears in
// (as author, subject, grantee or granter), newest first.
func (r *Repo) RecordsOf(ctx context.Context, id protocol.AccountID) ([]*Access, error) {
	prefix := "/keyshare/idx/acct/" + string(id) + "/"
	keys, err := listKeys(ctx, r.ds, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]*Access, 0, len(keys))
	for _, k := range keys {
		c, err := cid.Decode(strings.TrimPrefix(k.String(), prefix))
		if err != nil {
			return nil, fmt.Errorf("index key %s: %w", k, err)
		}
		a, err := r.AccessFor(ctx, c, id)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

func keyOf(id protocol.AccountID) ed25519.PublicKey {
	k, err := id.Key()
	if err != nil {
		panic("keyshare: invalid account ID in verified state: " + err.Error())
	}
	return k
}
