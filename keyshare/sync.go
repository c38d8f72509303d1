package keyshare

// This file is what chain sync over the network needs from the repo:
// reading a chain back from a head for a peer, applying chains that
// arrived block by block (verified exactly like a CAR import), telling
// listeners when chains change, and which records a local account may
// read but the repo does not hold yet.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

// ChainBlockAt returns the CID of account id's chain block at seq, if the
// repo holds the chain up to there.
func (r *Repo) ChainBlockAt(ctx context.Context, id protocol.AccountID, seq uint64) (cid.Cid, bool, error) {
	return r.blockAt(ctx, id, seq)
}

// ChainBack returns the raw bytes of the chain blocks from head back
// towards genesis, head first, stopping after the block with sequence
// number after+1 (so after == 0 with a known genesis stops at block 1;
// pass NoneHeld to go down to genesis), after maxBlocks blocks, or before
// maxBytes would be exceeded (at least one block is returned). head must be
// a chain block the repo holds in a committed chain.
func (r *Repo) ChainBack(ctx context.Context, head cid.Cid, after uint64, maxBlocks, maxBytes int) ([][]byte, error) {
	var out [][]byte
	total := 0
	c := head
	for len(out) < maxBlocks {
		blk, err := r.st.Blockstore().Get(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("chain block %s: %w", c, err)
		}
		raw := blk.RawData()
		if len(out) > 0 && total+len(raw) > maxBytes {
			break
		}
		b, err := protocol.DecodeBlock(raw)
		if err != nil {
			return nil, fmt.Errorf("chain block %s: %w", c, err)
		}
		if len(out) == 0 {
			// Only blocks of committed chains are served, never fork
			// evidence or stray blocks.
			have, ok, err := r.blockAt(ctx, b.AuthorID(), b.Seq)
			if err != nil {
				return nil, err
			}
			if !ok || !have.Equals(c) {
				return nil, fmt.Errorf("chain block %s: %w", c, store.ErrMissing)
			}
		}
		out = append(out, raw)
		total += len(raw)
		if b.Prev == nil || (after != NoneHeld && b.Seq <= after+1) {
			break
		}
		c = b.Prev.Cid
	}
	return out, nil
}

// NoneHeld is ChainBack's "after" for a peer that holds none of the chain.
const NoneHeld = ^uint64(0)

// ApplyChains verifies the chains ending at heads and applies their new
// blocks, exactly as ImportCAR does for a CAR: blocks come from offered
// (CID → bytes; every block's bytes are checked against its CID) or from
// the repo's store, every chain is checked from the head down to a block
// the repo holds or to genesis, ack entries pull in the chains they name,
// and any failure leaves the repo as it was, except that fork evidence is
// kept. A fork a recovery settles is no failure (forkrecovery.go): the
// chain switches to the arriving recovery's branch, or keeps its own and
// the arriving branch as evidence. An older head than the one held
// changes nothing (no rollback).
func (r *Repo) ApplyChains(ctx context.Context, heads []cid.Cid, offered map[cid.Cid][]byte) (*ImportResult, error) {
	if len(heads) == 0 {
		return nil, errors.New("apply chains: no heads")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	get := func(c cid.Cid) ([]byte, error) {
		if b, ok := offered[c]; ok {
			return b, nil
		}
		return nil, store.ErrMissing
	}
	ci, err := r.verifyChains(ctx, heads, get)
	if err != nil {
		return nil, r.keepForkEvidence(ctx, ci, err)
	}
	return r.applyImport(ctx, heads, ci)
}

// ChainChange is what one commit changed, or (Records alone) that the
// blocks of records arrived (RecordArrived).
type ChainChange struct {
	// Accounts lists the accounts whose chains advanced.
	Accounts []protocol.AccountID
	// Records lists the records whose access facts changed, and every
	// record of an account whose declared nodes changed (its providers,
	// or this node's role as its replica, may have changed with them).
	Records []cid.Cid
	// All is set when Records could not be listed: consider every record.
	All bool
}

// OnChainChange registers fn to be called after every commit that changed
// chains. fn runs while the repo is still busy with that commit: it must
// return quickly and must not call back into the repo (hand the change to
// a goroutine). The returned function unregisters fn.
func (r *Repo) OnChainChange(fn func(ChainChange)) (remove func()) {
	r.hooksMu.Lock()
	defer r.hooksMu.Unlock()
	r.nextHook++
	id := r.nextHook
	if r.hooks == nil {
		r.hooks = map[int]func(ChainChange){}
	}
	r.hooks[id] = fn
	return func() {
		r.hooksMu.Lock()
		defer r.hooksMu.Unlock()
		delete(r.hooks, id)
	}
}

// RecordArrived tells the OnChainChange listeners that the whole DAG of
// record root is now held (a fetch pinned and indexed it): its access
// facts are the same, but what can be done with it changed — a claim on
// it can now be checked and acknowledged (node/autoack.go), and it can be
// read and served.
func (r *Repo) RecordArrived(root cid.Cid) {
	r.chainsChanged(nil, []cid.Cid{root}, false)
}

// chainsChanged tells the OnChainChange listeners what a commit changed.
func (r *Repo) chainsChanged(accounts []protocol.AccountID, records []cid.Cid, all bool) {
	ch := ChainChange{Accounts: accounts, Records: records, All: all}
	r.hooksMu.Lock()
	defer r.hooksMu.Unlock()
	for _, fn := range r.hooks {
		fn(ch)
	}
}

// Wanted is a record this node should hold and does not hold whole yet,
// with the nodes that should have it.
type Wanted struct {
	// Record is the record's CID.
	Record cid.Cid
	// For is the account the node wants it for: a local account that
	// may read it, or an account whose replica the node is.
	For protocol.AccountID
	// Replica is true when the node wants the record as a replica.
	Replica bool
	// Pending is true when the node wants the record for a local
	// account to check and acknowledge: a contact wrote it about her and
	// it counts for nothing until she does (RuleWantPending).
	Pending bool
	// Providers are the peer IDs (text form) declared, on the author's
	// and the subject's chains, as their devices or replicas.
	Providers []string
}

// WantedRecords lists the records the node with peer ID self should hold
// and the repo has not completely received (a record counts as received
// once its root is pinned, which a fetch does last), by the access policy
// (wantRecord): those a local account may read now, those a contact wrote
// about a local account and she has not acknowledged yet (at most
// MaxPendingFetch per author; Wanted.Pending), and, for every account
// that declares self as its replica, the records that account wrote or is
// the subject of. With changed given it considers only those records (the
// ones a chain change touched), so its cost follows the change, not the
// repo.
func (r *Repo) WantedRecords(ctx context.Context, self string, changed ...cid.Cid) ([]Wanted, error) {
	r.SetNodeID(self)
	v, local, replicaOf, err := r.vouchers(ctx)
	if err != nil {
		return nil, err
	}
	candidates, err := r.candidates(ctx, v, changed)
	if err != nil {
		return nil, err
	}
	contacts, err := r.contacts(ctx)
	if err != nil {
		return nil, err
	}
	var out []Wanted
	nodes := map[protocol.AccountID][]DeviceInfo{} // declared nodes, read once per call
	w := &wantScan{v: v, local: local, replicaOf: replicaOf, contacts: contacts, nodes: nodes, earlier: map[[2]protocol.AccountID]map[EntryRef]int{},
		consent: map[[2]protocol.AccountID]Decision{}}
	for _, c := range candidates {
		pinned, err := r.st.IsPinned(ctx, c)
		if err != nil {
			return nil, err
		}
		if pinned {
			continue
		}
		as, err := r.accessAll(ctx, c)
		if err != nil {
			return nil, err
		}
		wt, ok, err := r.wanted(ctx, as, w)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, wt)
		}
	}
	return out, nil
}

// wantScan is what one WantedRecords call reads once: the accounts the
// node vouches for, which are local and which it replicates, the repo's
// contacts, the parties' declared nodes and, per (author, subject), the
// position of each pending claim of the author about the subject.
type wantScan struct {
	v                vouchSet
	local, replicaOf map[protocol.AccountID]bool
	contacts         map[protocol.AccountID]bool
	nodes            map[protocol.AccountID][]DeviceInfo
	earlier          map[[2]protocol.AccountID]map[EntryRef]int
	consent          map[[2]protocol.AccountID]Decision // (guardian, ward) → consentTo
}

// wanted applies wantRecord to the accounts the claims as name that this
// node vouches for, and fills in where to fetch from: the declared nodes
// of the parties of the claims that count, or, for a record wanted under
// a claim that does not count yet (RuleWantPending), its author's.
func (r *Repo) wanted(ctx context.Context, as []*Access, w *wantScan) (Wanted, bool, error) {
	var names []protocol.AccountID
	for _, a := range as {
		names = append(names, a.Author, a.Subject)
		for _, rd := range a.Readers {
			names = append(names, rd.Account)
		}
	}
	for _, id := range names {
		if w.v[id] == vouchNone {
			continue
		}
		var p pendingFacts
		cand := pendingCandidate(as, id, w.v, w.contacts)
		if cand != nil && w.local[id] {
			var err error
			if p, err = r.pendingFacts(ctx, cand, w); err != nil {
				return Wanted{}, false, err
			}
		}
		if w.local[id] {
			var err error
			if p.unaccepted, err = r.unacceptedWards(ctx, as, id, w); err != nil {
				return Wanted{}, false, err
			}
		}
		d := wantRecord(as, id, w.local[id], w.replicaOf[id], w.v, p)
		if !d.Allow {
			continue
		}
		wt := Wanted{Record: as[0].Record, For: id, Replica: d.Rule == RuleWantReplica, Pending: d.Rule == RuleWantPending}
		parties := []protocol.AccountID{}
		if wt.Pending {
			parties = append(parties, cand.Author)
		} else {
			for _, a := range countingClaims(as, w.v) {
				parties = append(parties, a.Author, a.Subject)
			}
		}
		seen := map[string]bool{}
		for _, party := range parties {
			devs, ok := w.nodes[party]
			if !ok {
				st, err := r.state(ctx, party)
				if err != nil && !errors.Is(err, ErrUnknownAccount) {
					return Wanted{}, false, err
				}
				if st != nil {
					devs = st.Devices
				}
				w.nodes[party] = devs
			}
			for _, dev := range devs {
				if !seen[dev.PeerID] {
					seen[dev.PeerID] = true
					wt.Providers = append(wt.Providers, dev.PeerID)
				}
			}
		}
		return wt, true, nil
	}
	return Wanted{}, false, nil
}

// unacceptedWards returns, for the subjects of as under whose standing
// grant GuardianReadScope local account id reads, those that appointed
// id guardian and whose appointment id has not accepted, with why
// (consentTo, read once per pair in a scan).
func (r *Repo) unacceptedWards(ctx context.Context, as []*Access, id protocol.AccountID, w *wantScan) (map[protocol.AccountID]Decision, error) {
	var out map[protocol.AccountID]Decision
	for _, a := range as {
		rd, ok := a.Reader(id)
		if !ok || rd.Scope != GuardianReadScope || a.Subject == id {
			continue
		}
		pair := [2]protocol.AccountID{id, a.Subject}
		d, ok := w.consent[pair]
		if !ok {
			var err error
			if d, err = r.consentTo(ctx, id, a.Subject); err != nil {
				return nil, err
			}
			w.consent[pair] = d
		}
		if d.Allow || d.Rule == RuleGuardianNone {
			continue // accepted, or a standing grant of that scope, not an appointment
		}
		if out == nil {
			out = map[protocol.AccountID]Decision{}
		}
		out[a.Subject] = d
	}
	return out, nil
}

// pendingFacts loads what wantRecord needs to judge claim a under
// RuleWantPending: the contacts, whether the record's root is contested
// (another claim on it, or a claim on another record root it belongs to:
// an inner block of a record, the same bytes under another codec), and
// how many of a's author's pending claims about a's subject come before
// a on his chain.
func (r *Repo) pendingFacts(ctx context.Context, a *Access, w *wantScan) (pendingFacts, error) {
	p := pendingFacts{contacts: w.contacts, contested: a.Contested}
	o, err := r.Owner(ctx, a.Record)
	if err != nil {
		return p, err
	}
	for _, root := range o.Records {
		if root.Equals(a.Record) {
			continue
		}
		others, err := r.accessAll(ctx, root)
		if err != nil {
			return p, err
		}
		if slices.ContainsFunc(others, func(o *Access) bool { return o.Known }) {
			p.contested = true
		}
	}
	pair := [2]protocol.AccountID{a.Author, a.Subject}
	pos, ok := w.earlier[pair]
	if !ok {
		// Every pending claim of the author about the subject, in his
		// chain's order: the records the two share.
		recs, err := r.sharedRecords(ctx, a.Author, a.Subject)
		if err != nil {
			return p, err
		}
		var claims []EntryRef
		for _, c := range recs {
			as, err := r.accessAll(ctx, c)
			if err != nil {
				return p, err
			}
			for _, o := range as {
				if o.Known && o.Author == a.Author && o.Subject == a.Subject && !o.proven() && !claimCountsAmong(o, as, w.v).Allow {
					claims = append(claims, *o.Entry)
				}
			}
		}
		sort.Slice(claims, func(i, j int) bool { return claims[i].before(claims[j]) })
		pos = make(map[EntryRef]int, len(claims))
		for i, e := range claims {
			pos[e] = i
		}
		w.earlier[pair] = pos
	}
	p.earlier = pos[*a.Entry]
	return p, nil
}

// vouchers returns the accounts this node vouches for (see vouchSet), and
// which of them are local and which declare this node their replica.
func (r *Repo) vouchers(ctx context.Context) (v vouchSet, local, replicaOf map[protocol.AccountID]bool, err error) {
	v, err = r.vouchSet(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	local, replicaOf = map[protocol.AccountID]bool{}, map[protocol.AccountID]bool{}
	for id := range v {
		l, err := r.isLocal(ctx, id)
		if err != nil {
			return nil, nil, nil, err
		}
		local[id] = l
	}
	if self := r.nodeID.Load(); self != nil {
		roles, err := r.declaredBy(ctx, *self)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, id := range roles.replicating {
			replicaOf[id] = true
		}
	}
	return v, local, replicaOf, nil
}

// candidates returns changed, or, when it is empty, every record an
// account in v appears in.
func (r *Repo) candidates(ctx context.Context, v vouchSet, changed []cid.Cid) ([]cid.Cid, error) {
	if len(changed) > 0 {
		return changed, nil
	}
	seen := map[cid.Cid]bool{}
	var out []cid.Cid
	for id := range v {
		recs, err := r.recordsIn(ctx, id)
		if err != nil {
			return nil, err
		}
		for c := range recs {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KeyString() < out[j].KeyString() })
	return out, nil
}

// UnknownAccountsIn lists the accounts that records of account id name
// (as author, subject, reader, or revoked or expired reader) and whose
// chain the repo does not hold: the profiles a node needs to tell which
// peers act for them.
func (r *Repo) UnknownAccountsIn(ctx context.Context, id protocol.AccountID) ([]protocol.AccountID, error) {
	recs, err := r.RecordsOf(ctx, id)
	if err != nil {
		return nil, err
	}
	seen := map[protocol.AccountID]bool{}
	var out []protocol.AccountID
	consider := func(a protocol.AccountID) error {
		if a == "" || seen[a] {
			return nil
		}
		seen[a] = true
		if _, err := r.state(ctx, a); errors.Is(err, ErrUnknownAccount) {
			out = append(out, a)
		} else if err != nil {
			return err
		}
		return nil
	}
	given, _, err := r.StandingGrants(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, s := range given {
		if err := consider(s.To); err != nil {
			return nil, err
		}
	}
	guardians, err := r.guardiansOf(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, g := range guardians {
		if err := consider(g.Guardian); err != nil {
			return nil, err
		}
	}
	for _, acc := range recs {
		names := []protocol.AccountID{acc.Author, acc.Subject}
		for _, lists := range [][]Reader{acc.Readers, acc.Revoked, acc.Expired} {
			for _, rd := range lists {
				names = append(names, rd.Account)
			}
		}
		for _, a := range names {
			if err := consider(a); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// MayServeProfile decides, by the access policy (serveProfile), whether
// the node gives the peer with ID peerID (text form) the profile of
// account id: an account of this repo's is public; a contact's only to a
// declared device or replica of one of the repo's own accounts, which is
// trusted with those accounts' chains and so already learns which accounts
// they deal with.
func (r *Repo) MayServeProfile(ctx context.Context, peerID string, id protocol.AccountID) (Decision, error) {
	local, err := r.isLocal(ctx, id)
	if err != nil {
		return Decision{}, err
	}
	roles, err := r.declaredBy(ctx, peerID)
	if err != nil {
		return Decision{}, err
	}
	ownNode := false
	for _, a := range append(roles.acting, roles.replicating...) {
		if l, err := r.isLocal(ctx, a); err != nil {
			return Decision{}, err
		} else if l {
			ownNode = true
		}
	}
	chain := false
	if !local && !ownNode && roles.known() {
		v, err := r.vouchSet(ctx)
		if err != nil {
			return Decision{}, err
		}
		d, err := r.chainDecision(ctx, roles, id, v)
		if err != nil {
			return Decision{}, err
		}
		chain = d.Allow
	}
	return serveProfile(local, ownNode, chain), nil
}

// DropRevoked removes the records this node received for a local account
// and may no longer keep, by the access policy (keepRecord): every local
// account that could read one was revoked (or its grant expired), no local
// account wrote it or is its subject, and the node (peer ID self) is not a
// declared replica of its author or subject. They are unpinned and
// collected at once, so the next read asks the network again, where the
// revocation is enforced. This is what an honest grantee's software does;
// SECURITY.md says why it proves nothing about a dishonest one. With
// changed given it considers only those records.
func (r *Repo) DropRevoked(ctx context.Context, self string, changed ...cid.Cid) ([]cid.Cid, error) {
	r.SetNodeID(self)
	v, local, replicaOf, err := r.vouchers(ctx)
	if err != nil {
		return nil, err
	}
	pins := changed
	if len(pins) == 0 {
		if pins, err = r.st.Pins(ctx); err != nil {
			return nil, err
		}
	} else if pins, err = r.rekeyPartners(ctx, changed); err != nil {
		return nil, err
	}
	var drop []cid.Cid
	for _, c := range pins {
		if pinned, err := r.st.IsPinned(ctx, c); err != nil {
			return nil, err
		} else if !pinned {
			continue
		}
		as, err := r.accessAll(ctx, c)
		if err != nil {
			return nil, err
		}
		if d, ok := keepRekeyed(as, v, r.pinned(ctx)); (!ok || d.Allow) && keepRecord(as, local, replicaOf, v).Allow {
			continue
		}
		if err := r.st.Unpin(ctx, c); err != nil {
			return nil, err
		}
		drop = append(drop, c)
	}
	if err := r.deleteRecords(ctx, drop); err != nil {
		return drop, fmt.Errorf("remove revoked records: %w", err)
	}
	return drop, nil
}

// deleteRecords deletes the blocks of the (unpinned) records roots that
// no other record claims. GC would keep them: chain heads link records.
func (r *Repo) deleteRecords(ctx context.Context, roots []cid.Cid) error {
	dropping := map[cid.Cid]bool{}
	for _, c := range roots {
		dropping[c] = true
	}
	for _, root := range roots {
		var doomed []cid.Cid
		err := r.st.Walk(ctx, root, func(b blocks.Block) error {
			o, err := r.Owner(ctx, b.Cid())
			if err != nil {
				return err
			}
			if o.Chain != "" {
				return nil
			}
			for _, owner := range o.Records {
				if !dropping[owner] {
					return nil
				}
			}
			doomed = append(doomed, b.Cid())
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrMissing) {
			return err
		}
		for _, c := range doomed {
			if err := r.st.Blockstore().DeleteBlock(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}
