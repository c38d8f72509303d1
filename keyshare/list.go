package keyshare

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Listed is one record in an account's listing: its access state and,
// when the account can decrypt it, the metadata from its envelope.
type Listed struct {
	*Access
	Listing
}

// Listing is what a listing adds to a record's access state.
type Listing struct {
	Title     string        `json:"title,omitempty"`
	Kind      protocol.Kind `json:"kind,omitempty"`
	MediaType string        `json:"media_type,omitempty"`
	FileName  string        `json:"file_name,omitempty"`
	// FHIR is what the envelope says of the one FHIR resource the record
	// holds (resource type, clinical date, code, categories).
	FHIR *protocol.Clinical `json:"fhir,omitempty"`
	// Readable tells whether the account may decrypt the record now;
	// Status says why not ("revoked", "expired", "no access"), why it is
	// listed anyway ("hidden"), or that its content has not reached this
	// node yet ("arriving": the envelope, which travels sealed on the
	// chain, is here, the record's root block is not). A record its
	// subject re-keyed is "rekeyed": its content lives on in the new
	// version (Access.Rekeyed) and the old ciphertext is not served.
	Readable bool   `json:"readable"`
	Status   string `json:"status"`
	// Error is set when the record could not be opened (missing blocks,
	// bad envelope).
	Error string `json:"error,omitempty"`
	// History lists the earlier versions of the record that FoldVersions
	// folded into this row, newest first; SupersededBy names the version
	// that replaced this one (see versionOf).
	History      []Version `json:"history,omitempty"`
	SupersededBy string    `json:"superseded_by,omitempty"`
}

// Version is one earlier version in a row's history.
type Version struct {
	Record  string             `json:"cid"`
	Title   string             `json:"title,omitempty"`
	Author  protocol.AccountID `json:"author"`
	Created time.Time          `json:"created"`
	Status  string             `json:"status"`
}

// MarshalJSON flattens the access state and the listing fields into one
// object (the embedded *Access has a MarshalJSON of its own, which would
// otherwise be promoted and drop the listing fields): the access state's
// fields as Access.MarshalJSON writes them, then the listing's. It is
// encoded in one pass, since a list of 10,000 records encodes 10,000 of
// them.
func (l Listed) MarshalJSON() ([]byte, error) {
	if l.Access == nil {
		return json.Marshal(l.Listing)
	}
	type plain Access
	return json.Marshal(struct {
		Record string `json:"cid"`
		*plain
		Listing
	}{l.Record.String(), (*plain)(l.Access), l.Listing})
}

// List returns the records k may read now, newest first, with their
// titles. Records k is the subject of and has hidden are left out unless
// all is set; with all set it also lists records k could read before
// (revoked, expired). A claim naming k that k neither made nor
// acknowledged, that does not count here, and whose key does not open is
// left out: it is someone's forgery, not k's record (verify names it).
// The readable records are opened on every core (each opening not in
// k's session cache costs three X25519 operations).
func (r *Repo) List(ctx context.Context, k *Keys, all bool) ([]Listed, error) {
	rows, v, err := r.listRows(ctx, k, all)
	if err != nil {
		return nil, err
	}
	return r.openRows(ctx, k, rows, v), nil
}

// listRows returns the rows List lists for k, not yet opened, and the
// accounts this node vouches for (which opening needs).
func (r *Repo) listRows(ctx context.Context, k *Keys, all bool) ([]Listed, vouchSet, error) {
	as, err := r.RecordsOf(ctx, k.ID)
	if err != nil {
		return nil, vouchSet{}, err
	}
	v, err := r.vouchSet(ctx)
	if err != nil {
		return nil, vouchSet{}, err
	}
	rows := []Listed{}
	for _, a := range as {
		if l, ok := listedRow(a, k.ID, all); ok {
			rows = append(rows, l)
		}
	}
	return rows, v, nil
}

// listedRow makes a's row for account id, not yet opened, and tells
// whether List lists it (all: as List's argument).
func listedRow(a *Access, id protocol.AccountID, all bool) (Listed, bool) {
	if !a.Known || (!all && a.Hidden && a.Subject == id && readDecision(a, id).Allow) {
		return Listed{}, false // hidden: not opened
	}
	l := rowStatus(a, id)
	switch {
	case l.Status == "no access":
		return Listed{}, false
	case !all && (l.Status == "revoked" || l.Status == "expired" || l.Status == "hidden" || l.Status == "rekeyed"):
		return Listed{}, false
	}
	return l, true
}

// listChunk is how many records listEach reads and opens at a time.
var listChunk = 512

// listEach calls fn with each row List(ctx, k, all) lists, opened, and
// the time its listing orders it by (the record entry's time, newest
// first in List), in the order of the account's index rather than
// newest first. It reads and opens listChunk records at a time, so a
// caller that keeps less of a row than the row holds (FHIRIndexFor) holds
// at most a chunk of whole rows. fn must not keep l, which the next
// chunk reuses.
func (r *Repo) listEach(ctx context.Context, k *Keys, all bool, fn func(l *Listed, created time.Time)) error {
	recs, err := r.cidsUnder(ctx, "/keyshare/idx/acct/"+string(k.ID)+"/")
	if err != nil {
		return err
	}
	v, err := r.vouchSet(ctx)
	if err != nil {
		return err
	}
	rows := make([]Listed, 0, min(listChunk, len(recs)))
	created := make([]time.Time, 0, cap(rows))
	forged := make([]bool, 0, cap(rows))
	for start := 0; start < len(recs); start += listChunk {
		rows, created, forged = rows[:0], created[:0], forged[:0]
		for _, c := range recs[start:min(start+listChunk, len(recs))] {
			a, err := r.AccessFor(ctx, c, k.ID)
			if err != nil {
				return err
			}
			if l, ok := listedRow(a, k.ID, all); ok {
				rows, created, forged = append(rows, l), append(created, a.Created), append(forged, false)
			}
		}
		forEach(len(rows), func(i int) {
			if rows[i].Readable {
				forged[i] = r.openRow(ctx, k, &rows[i], v)
			}
		})
		for i := range rows {
			if !forged[i] {
				fn(&rows[i], created[i])
			}
		}
		clear(rows) // the chunk's access states and envelopes go now
	}
	return nil
}

// openRows opens the readable rows on every core and returns the rows
// that are not forgeries (openRow), in order.
func (r *Repo) openRows(ctx context.Context, k *Keys, rows []Listed, v vouchSet) []Listed {
	forged := make([]bool, len(rows))
	forEach(len(rows), func(i int) {
		if rows[i].Readable {
			forged[i] = r.openRow(ctx, k, &rows[i], v)
		}
	})
	out := rows[:0]
	for i, l := range rows {
		if !forged[i] {
			out = append(out, l)
		}
	}
	return out
}

// VersionsOf returns the rows of List(ctx, k, true) that are versions of
// record c, c's own row among them, folded as FoldVersions folds them: the
// one row whose History holds c or that is c. It opens only the rows
// linked to c by a Supersedes edge, directly or through others (the edge
// as the row's claim states it before and after opening), so a record
// page costs the record's versions, not the whole listing. Nil when c is
// not listed for k.
func (r *Repo) VersionsOf(ctx context.Context, k *Keys, c cid.Cid) ([]Listed, error) {
	rows, v, err := r.listRows(ctx, k, true)
	if err != nil {
		return nil, err
	}
	at := make(map[string]int, len(rows))
	older := make(map[string][]int, len(rows)) // CID → rows that name it as superseded
	for i := range rows {
		at[rows[i].Record.String()] = i
		if s := rows[i].Supersedes; s != "" {
			older[s] = append(older[s], i)
		}
	}
	start, ok := at[c.String()]
	if !ok {
		return nil, nil
	}
	in := map[int]bool{start: true}
	todo := []int{start}
	link := func(i int) {
		if !in[i] {
			in[i] = true
			todo = append(todo, i)
		}
	}
	for len(todo) > 0 {
		// Open what was reached, then follow its edges both ways (an
		// opened row may stand on another claim, which may name another
		// predecessor).
		batch := make([]Listed, len(todo))
		for n, i := range todo {
			batch[n] = rows[i]
		}
		idx := todo
		todo = nil
		forged := make([]bool, len(batch))
		forEach(len(batch), func(n int) {
			if batch[n].Readable {
				forged[n] = r.openRow(ctx, k, &batch[n], v)
			}
		})
		for n, i := range idx {
			rows[i] = batch[n]
			if forged[n] {
				rows[i].Access = nil // dropped below
				continue
			}
			if j, ok := at[rows[i].Supersedes]; ok && rows[i].Supersedes != "" {
				link(j)
			}
			for _, j := range older[rows[i].Record.String()] {
				link(j)
			}
		}
	}
	var got []Listed
	for i := range rows {
		if in[i] && rows[i].Access != nil {
			got = append(got, rows[i])
		}
	}
	return FoldVersions(got), nil
}

// FoldVersions shows superseded versions as the history of one record:
// a row that a newer row supersedes under the access policy (versionOf)
// leaves the list and joins the newest row's History, and gets
// SupersededBy. Rows keep their order; a version that supersedes a record
// not in rows, or that versionOf does not accept, stays a row of its own.
func FoldVersions(rows []Listed) []Listed {
	next := versionNext(len(rows), func(i int) *Access { return rows[i].Access })
	byCID := make(map[string]int, len(rows))
	for i := range rows {
		if rows[i].Access != nil {
			byCID[rows[i].Record.String()] = i
		}
	}
	head := func(i int) int {
		for next[i] >= 0 {
			i = next[i]
		}
		return i
	}
	out := make([]Listed, 0, len(rows))
	for i := range rows {
		if next[i] >= 0 {
			continue
		}
		out = append(out, rows[i])
	}
	at := make(map[int]int, len(out))
	for k := range out {
		at[byCID[out[k].Record.String()]] = k
	}
	for i := range rows {
		if next[i] < 0 {
			continue
		}
		rows[i].SupersededBy = rows[next[i]].Record.String()
		k := at[head(i)]
		l := rows[i]
		out[k].History = append(out[k].History, Version{Record: l.Record.String(), Title: l.Title, Author: l.Author, Created: l.Created, Status: l.Status})
	}
	return out
}

// versionNext returns, for each of n rows in listing order (newest
// first), the row that supersedes it as FoldVersions folds them, -1 for
// none; access gives a row's access state (nil: a row without one, never
// folded). A record superseded by two versions keeps the first (in the
// rows' order: the newest) and the other version stays a row of its own.
func versionNext(n int, access func(i int) *Access) []int {
	byCID := make(map[string]int, n)
	for i := range n {
		if a := access(i); a != nil {
			byCID[a.Record.String()] = i
		}
	}
	next := make([]int, n)
	for i := range next {
		next[i] = -1
	}
	hasOlder := make([]bool, n)
	for i := range n {
		a := access(i)
		if a == nil || a.Supersedes == "" || hasOlder[i] {
			continue
		}
		j, ok := byCID[a.Supersedes]
		if !ok || j == i || next[j] >= 0 || !versionOf(a, access(j)).Allow {
			continue
		}
		next[j], hasOlder[i] = i, true
	}
	// A cycle (claims on one CID can be many, so one is conceivable) is
	// cut where it is first found: every row stays listed somewhere.
	for i := range n {
		j := next[i]
		for m := 0; j >= 0 && j != i && m < n; m++ {
			j = next[j]
		}
		if j == i {
			next[i] = -1
		}
	}
	return next
}

// ListRecord returns record c's row for k as List would give it with all
// set, and also when List leaves it out: status "no access" for a record
// k could never read, and Error set for a claim List takes for a forgery.
// A record no verified chain names is an error.
func (r *Repo) ListRecord(ctx context.Context, k *Keys, c cid.Cid) (Listed, error) {
	a, err := r.AccessFor(ctx, c, k.ID)
	if err != nil {
		return Listed{}, err
	}
	if !a.Known {
		return Listed{}, fmt.Errorf("%s: unknown record (no verified chain holds its entry)", c)
	}
	v, err := r.vouchSet(ctx)
	if err != nil {
		return Listed{}, err
	}
	l := rowStatus(a, k.ID)
	if l.Readable {
		r.openRow(ctx, k, &l, v)
	}
	return l, nil
}

// rowStatus makes the listing row of a (a known record) for account id:
// its status, from the access policy, without opening anything.
func rowStatus(a *Access, id protocol.AccountID) Listed {
	l := Listed{Access: a, Listing: Listing{Status: "readable"}}
	d := readDecision(a, id)
	l.Readable = d.Allow
	if !l.Readable {
		l.Status = map[Rule]string{RuleReadRevoked: "revoked", RuleReadExpired: "expired"}[d.Rule]
		if l.Status == "" {
			l.Status = "no access"
		}
		return l
	}
	if a.Hidden && a.Subject == id {
		l.Status = "hidden"
	}
	if a.Rekeyed != nil {
		l.Status = "rekeyed" // its new version is a.Rekeyed.New
	}
	return l
}

// openRow fills a readable row with the metadata of the envelope it
// opens under for k. It reports a forgery: a claim k neither made,
// acknowledged nor can count on whose key does not open (then l.Error
// says why).
func (r *Repo) openRow(ctx context.Context, k *Keys, l *Listed, v vouchSet) (forged bool) {
	// Listed under the claim the record opens under (RecordKey), so
	// author and title come from the same claim.
	env, _, opened, err := r.openView(ctx, k, l.Record)
	if err != nil {
		l.Error = err.Error()
		// A forgery (verify reports it), not a record of k's.
		return viewRank(l.Access, k.ID, v) > 2
	}
	l.Access = opened
	l.Title, l.Kind, l.MediaType, l.FileName, l.FHIR = env.Title, env.Kind, env.MediaType, env.FileName, env.FHIR
	if l.Status == "readable" {
		// Its content is here once the root block is (a fetch brings the
		// root first and pins it last; a CAR import brings it whole).
		if has, err := r.st.Blockstore().Has(ctx, l.Record); err == nil && !has {
			l.Status = "arriving"
		}
	}
	return false
}

// forEach calls fn(0) … fn(n-1), on up to GOMAXPROCS goroutines when n is
// large enough to be worth it, and returns when all have returned.
func forEach(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/16)
	if workers < 2 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}
