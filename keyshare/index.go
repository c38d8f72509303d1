package keyshare

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"

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

// The shared-record index lists, for every two accounts, the records
// where one is an author or subject of a claim and the other appears at
// all (as the other party, a reader, a granter, a revoked reader …), in
// both orders, so that the records two accounts share are one prefix read
// (the chain-serving rule needs only those):
//
//	/keyshare/idx/with/<account A>/<account B>/<record CID> → (empty)
const sharedPrefix = "/keyshare/idx/with/"

func keyShared(a, b protocol.AccountID, c cid.Cid) datastore.Key {
	return datastore.NewKey(sharedPrefix + string(a) + "/" + string(b) + "/" + c.String())
}

// sharedKeys returns the shared-record index keys that facts f of record c
// call for.
func sharedKeys(c cid.Cid, f *recordFacts) []datastore.Key {
	parties := map[protocol.AccountID]bool{}
	named := map[protocol.AccountID]bool{}
	for _, cl := range f.Claims {
		parties[cl.Author], parties[cl.Subject] = true, true
	}
	for id := range parties {
		named[id] = true
	}
	for _, k := range f.Keys {
		named[k.To], named[k.Via.Account] = true, true
	}
	for _, rv := range f.Revokes {
		named[rv.From], named[rv.Via.Account] = true, true
	}
	for _, h := range f.Hides {
		named[h.Via.Account] = true
	}
	for _, a := range f.Acks {
		named[a.Via.Account], named[a.Author] = true, true
	}
	var out []datastore.Key
	for p := range parties {
		for n := range named {
			if p != n {
				out = append(out, keyShared(p, n, c), keyShared(n, p, c))
			}
		}
	}
	return append(out, guardianSharedKeys(c, f)...)
}

// sharedRecords returns the records accounts a and b share (see
// sharedKeys).
func (r *Repo) sharedRecords(ctx context.Context, a, b protocol.AccountID) ([]cid.Cid, error) {
	prefix := sharedPrefix + string(a) + "/" + string(b) + "/"
	if cached, ok := cacheGet(&r.cache, &r.cache.shared, prefix); ok {
		return cached, nil
	}
	gen := r.cache.generation()
	out, err := r.cidsUnder(ctx, prefix)
	if err != nil {
		return nil, err
	}
	cachePut(&r.cache, &r.cache.shared, gen, prefix, out)
	return out, nil
}

// keySharedIndexDone marks a repo whose shared-record index covers every
// record (repos from before the index get it on open).
var keySharedIndexDone = datastore.NewKey("/keyshare/shared-index-complete")

// completeSharedIndex builds the shared-record index of repos written
// before it existed, from the record facts, once.
func (r *Repo) completeSharedIndex(ctx context.Context) error {
	if done, err := r.ds.Has(ctx, keySharedIndexDone); err != nil || done {
		return err
	}
	res, err := r.ds.Query(ctx, query.Query{Prefix: "/keyshare/idx/rec/"})
	if err != nil {
		return fmt.Errorf("index shared records: %w", err)
	}
	entries, err := res.Rest()
	if err != nil {
		return fmt.Errorf("index shared records: %w", err)
	}
	batch, err := r.ds.Batch(ctx)
	if err != nil {
		return err
	}
	for _, e := range entries {
		c, err := cid.Decode(strings.TrimPrefix(e.Key, "/keyshare/idx/rec/"))
		if err != nil {
			return fmt.Errorf("index shared records: bad key %s", e.Key)
		}
		f := &recordFacts{}
		if err := json.Unmarshal(e.Value, f); err != nil {
			return fmt.Errorf("index shared records: %s: %w", e.Key, err)
		}
		for _, k := range sharedKeys(c, f) {
			if err := batch.Put(ctx, k, nil); err != nil {
				return err
			}
		}
	}
	if err := batch.Put(ctx, keySharedIndexDone, nil); err != nil {
		return err
	}
	done := r.cache.writing()
	err = batch.Commit(ctx)
	done()
	if err != nil {
		return fmt.Errorf("index shared records: %w", err)
	}
	return nil
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

// inChainOrder returns a copy of one chain's events sorted by their
// entries' positions (via), for the folds that turn them into intervals
// (guardianSpans, standings).
func inChainOrder[E any](evs []E, via func(E) EntryRef) []E {
	out := slices.Clone(evs)
	sort.SliceStable(out, func(i, j int) bool { return via(out[i]).before(via(out[j])) })
	return out
}

type keyFact struct {
	To      protocol.AccountID `json:"to"`
	Key     []byte             `json:"key"`
	Expires int64              `json:"expires,omitempty"`
	Via     EntryRef           `json:"via"`
	Grant   bool               `json:"grant,omitempty"` // from a grant entry (else the record entry)
	// Scope is set for a key given under a standing grant (a scoped
	// entry, on the author's or the subject's chain; Grant is set too):
	// it counts only while the subject's chain holds that scope, live,
	// for To (see evaluateClaim).
	Scope string `json:"scope,omitempty"`
	// Ward is set for a key from a guardian's wardgrant entry: the ward
	// whose records the guardian (Via.Account) grants; it counts only as
	// far as guardianAct says (see evaluateClaim).
	Ward protocol.AccountID `json:"ward,omitempty"`
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
	// Ward is set for a guardian's wardrevoke entry, as keyFact.Ward.
	Ward protocol.AccountID `json:"ward,omitempty"`
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
	// Rekeys are the rekey entries naming the CID, as the record they
	// re-key or as the new version (see rekeyFact).
	Rekeys []rekeyFact `json:"rekeys,omitempty"`

	// scopes holds, per subject of a claim, the standing-grant events of
	// its chain (scopeEvent), loaded with the facts (Repo.facts) and never
	// stored with them: they are facts of the subject's chain, not of
	// the record.
	scopes map[protocol.AccountID][]scopeEvent
	// guardians holds, per subject of a claim, the guardian spans of its
	// chain, loaded like scopes (Repo.withGuardians).
	guardians map[protocol.AccountID][]guardianSpan
}

// indexWriter accumulates fact changes for a batch of blocks.
type indexWriter struct {
	ctx   context.Context
	ds    getter
	facts map[cid.Cid]*recordFacts
	accts map[datastore.Key]bool
}

func newIndexWriter(ctx context.Context, ds getter) *indexWriter {
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
			if err := w.grantKeys(author, ref, body.To, body.Keys, body.Expires, ""); err != nil {
				return err
			}
		case *protocol.ScopedKeys:
			if err := w.grantKeys(author, ref, body.To, body.Keys, 0, body.Scope); err != nil {
				return err
			}
		case *protocol.WardGrant:
			if err := w.wardKeys(ref, body); err != nil {
				return err
			}
		case *protocol.WardRevoke:
			if err := w.wardRevokes(ref, body); err != nil {
				return err
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
		case *protocol.Rekey:
			if err := w.applyRekey(body, ref); err != nil {
				return err
			}
		}
	}
	return nil
}

// grantKeys adds the keys of a grant entry (scope "") or of a scoped
// entry (under scope) at ref, by author, for the account whose key is to.
func (w *indexWriter) grantKeys(author protocol.AccountID, ref EntryRef, toKey []byte, keys []protocol.RecordKey, expires int64, scope string) error {
	to := protocol.AccountIDFromKey(toKey)
	for _, k := range keys {
		f, err := w.get(k.Record.Cid)
		if err != nil {
			return err
		}
		if hasRef(f, ref, to) {
			continue
		}
		f.Keys = append(f.Keys, keyFact{To: to, Key: k.Key, Expires: expires, Via: ref, Grant: true, Scope: scope})
		w.touch(to, k.Record.Cid)
		w.touch(author, k.Record.Cid)
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
	for k := range w.shared() {
		if err := b.Put(w.ctx, k, nil); err != nil {
			return err
		}
	}
	return nil
}

// shared returns the shared-record index keys of the accumulated facts.
func (w *indexWriter) shared() map[datastore.Key]bool {
	out := map[datastore.Key]bool{}
	for c, f := range w.facts {
		for _, k := range sharedKeys(c, f) {
			out[k] = true
		}
	}
	return out
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
	sort.SliceStable(f.Rekeys, func(i, j int) bool { return refLess(f.Rekeys[i].Via, f.Rekeys[j].Via) })
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

// Access returns the access state of record c now, under the first of
// its claims that counts on this node (normally its only one), else under
// its first claim.
func (r *Repo) Access(ctx context.Context, c cid.Cid) (*Access, error) {
	as, err := r.accessAll(ctx, c)
	if err != nil {
		return nil, err
	}
	v, err := r.vouchSet(ctx)
	if err != nil {
		return nil, err
	}
	if counting := countingClaims(as, v); len(counting) > 0 {
		return counting[0], nil
	}
	return as[0], nil
}

// AccessFor returns the access state of record c as it concerns account
// id: under the first claim of id's view (see viewOrder in policy.go),
// else under the first claim. Reading goes further (Repo.RecordKey): it
// tries the claims of the view in turn until one's key opens the record.
func (r *Repo) AccessFor(ctx context.Context, c cid.Cid, id protocol.AccountID) (*Access, error) {
	view, as, err := r.viewOf(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if len(view) > 0 {
		return view[0], nil
	}
	return as[0], nil
}

// viewOf returns the claims on c that name id, in the order id's view
// tries them, and every claim on c.
func (r *Repo) viewOf(ctx context.Context, c cid.Cid, id protocol.AccountID) (view, all []*Access, err error) {
	as, err := r.accessAll(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	v, err := r.vouchSet(ctx)
	if err != nil {
		return nil, nil, err
	}
	return viewOrder(as, id, v), as, nil
}

func (r *Repo) accessAll(ctx context.Context, c cid.Cid) ([]*Access, error) {
	f, err := r.facts(ctx, c)
	if err != nil {
		return nil, err
	}
	return evaluate(c, f, r.now()), nil
}

// facts returns the record facts of c (cached; see decisionCache).
func (r *Repo) facts(ctx context.Context, c cid.Cid) (*recordFacts, error) {
	if f, ok := cacheGet(&r.cache, &r.cache.facts, c); ok {
		return f, nil
	}
	gen := r.cache.generation()
	f := &recordFacts{}
	if _, err := getJSON(ctx, r.ds, keyRecordFacts(c), f); err != nil {
		return nil, err
	}
	if err := r.withScopes(ctx, f); err != nil {
		return nil, err
	}
	cachePut(&r.cache, &r.cache.facts, gen, c, f)
	return f, nil
}

// RecordsOf returns the access state of every record account id appears in
// (as author, subject, grantee or granter), newest first.
func (r *Repo) RecordsOf(ctx context.Context, id protocol.AccountID) ([]*Access, error) {
	recs, err := r.cidsUnder(ctx, "/keyshare/idx/acct/"+string(id)+"/")
	if err != nil {
		return nil, err
	}
	out := make([]*Access, 0, len(recs))
	for _, c := range recs {
		a, err := r.AccessFor(ctx, c, id)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// recordsIn returns the CIDs of the records account id appears in (the
// keys RecordsOf reads), without evaluating them.
func (r *Repo) recordsIn(ctx context.Context, id protocol.AccountID) (map[cid.Cid]bool, error) {
	recs, err := r.cidsUnder(ctx, "/keyshare/idx/acct/"+string(id)+"/")
	if err != nil {
		return nil, err
	}
	out := make(map[cid.Cid]bool, len(recs))
	for _, c := range recs {
		out[c] = true
	}
	return out, nil
}

// recordsAmong returns the records of only, or, when only is empty,
// every record that names account id (recordsIn): what a pass over an
// account's records looks at, all of them or those a change touched.
func (r *Repo) recordsAmong(ctx context.Context, id protocol.AccountID, only []cid.Cid) (map[cid.Cid]bool, error) {
	if len(only) == 0 {
		return r.recordsIn(ctx, id)
	}
	recs := make(map[cid.Cid]bool, len(only))
	for _, c := range only {
		recs[c] = true
	}
	return recs, nil
}

func keyOf(id protocol.AccountID) ed25519.PublicKey {
	k, err := id.Key()
	if err != nil {
		panic("keyshare: invalid account ID in verified state: " + err.Error())
	}
	return k
}
