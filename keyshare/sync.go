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
// kept. An older head than the one held changes nothing (no rollback).
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

// OnChainChange registers fn to be called after every commit that changed
// chains, with the accounts whose chains advanced. fn runs while the repo
// is still busy with that commit: it must return quickly and must not call
// back into the repo (hand the accounts to a goroutine). The returned
// function unregisters fn.
func (r *Repo) OnChainChange(fn func(accounts []protocol.AccountID)) (remove func()) {
	r.hooksMu.Lock()
	defer r.hooksMu.Unlock()
	r.nextHook++
	id := r.nextHook
	if r.hooks == nil {
		r.hooks = map[int]func([]protocol.AccountID){}
	}
	r.hooks[id] = fn
	return func() {
		r.hooksMu.Lock()
		defer r.hooksMu.Unlock()
		delete(r.hooks, id)
	}
}

// chainsChanged tells the OnChainChange listeners which accounts advanced.
func (r *Repo) chainsChanged(vbs []verifiedBlock) {
	seen := map[protocol.AccountID]bool{}
	var ids []protocol.AccountID
	for _, vb := range vbs {
		id := vb.block.AuthorID()
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	r.hooksMu.Lock()
	defer r.hooksMu.Unlock()
	for _, fn := range r.hooks {
		fn(ids)
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
	// Providers are the peer IDs (text form) declared, on the author's
	// and the subject's chains, as their devices or replicas.
	Providers []string
}

// WantedRecords lists the records the node with peer ID self should hold
// and the repo has not completely received (a record counts as received
// once its root is pinned, which a fetch does last): those a local account
// may read now, and, for every account that declares self as its replica,
// the records that account wrote or is the subject of.
func (r *Repo) WantedRecords(ctx context.Context, self string) ([]Wanted, error) {
	all, err := r.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	nodes := map[protocol.AccountID][]string{}
	for _, a := range all {
		for _, d := range a.Devices {
			nodes[a.ID] = append(nodes[a.ID], d.PeerID)
		}
	}
	var out []Wanted
	seen := map[cid.Cid]bool{}
	for _, a := range all {
		replica := declaresReplica(a, self)
		if !a.Local && !replica {
			continue
		}
		recs, err := r.RecordsOf(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		for _, acc := range recs {
			if seen[acc.Record] || !acc.Known {
				continue
			}
			_, reads := acc.Reader(a.ID)
			owns := acc.Author == a.ID || acc.Subject == a.ID
			if !(a.Local && reads) && !(replica && owns) {
				continue
			}
			pinned, err := r.st.IsPinned(ctx, acc.Record)
			if err != nil {
				return nil, err
			}
			if pinned {
				continue
			}
			seen[acc.Record] = true
			w := Wanted{Record: acc.Record, For: a.ID, Replica: !(a.Local && reads)}
			w.Providers = append(w.Providers, nodes[acc.Author]...)
			if acc.Subject != acc.Author {
				w.Providers = append(w.Providers, nodes[acc.Subject]...)
			}
			out = append(out, w)
		}
	}
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

// ServesProfileTo tells whether the node may give the peer with ID
// peerID (text form) the profile of a non-local account it knows: only
// when the peer is a declared device or replica of one of the repo's own
// accounts, which is trusted with those accounts' chains and so already
// learns which accounts they deal with.
func (r *Repo) ServesProfileTo(ctx context.Context, peerID string) (bool, error) {
	acting, replicating, err := r.declaredBy(ctx, peerID)
	if err != nil {
		return false, err
	}
	for _, id := range append(acting, replicating...) {
		if local, err := r.isLocal(ctx, id); err != nil || local {
			return local, err
		}
	}
	return false, nil
}

// declaresReplica tells whether account a declares the node with peer ID
// self as its replica.
func declaresReplica(a AccountInfo, self string) bool {
	return slices.ContainsFunc(a.Devices, func(d DeviceInfo) bool { return d.Replica && d.PeerID == self })
}

// DropRevoked removes the records this node received for a local account
// and may no longer keep: every local account that could read one was
// revoked (or its grant expired), no local account wrote it or is its
// subject, and the node (peer ID self) is not a declared replica of its
// author or subject. They are unpinned and collected at once, so the next
// read asks the network again, where the revocation is enforced. This is
// what an honest grantee's software does; SECURITY.md says why it proves
// nothing about a dishonest one.
func (r *Repo) DropRevoked(ctx context.Context, self string) ([]cid.Cid, error) {
	pins, err := r.st.Pins(ctx)
	if err != nil {
		return nil, err
	}
	all, err := r.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	local := map[protocol.AccountID]bool{}
	replicaOf := map[protocol.AccountID]bool{}
	for _, a := range all {
		local[a.ID] = a.Local
		replicaOf[a.ID] = declaresReplica(a, self)
	}
	var drop []cid.Cid
	for _, c := range pins {
		as, err := r.accessAll(ctx, c)
		if err != nil {
			return nil, err
		}
		if !droppable(as, local, replicaOf) {
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

// droppable tells whether a record, under every claim on it, was taken
// away from the node's local accounts by revocation or expiry and is
// kept for nobody else here.
func droppable(as []*Access, local, replicaOf map[protocol.AccountID]bool) bool {
	lost := false
	for _, a := range as {
		if !a.Known {
			return false
		}
		if local[a.Author] || local[a.Subject] || replicaOf[a.Author] || replicaOf[a.Subject] {
			return false
		}
		for _, rd := range a.Readers {
			if local[rd.Account] {
				return false
			}
		}
		for _, lists := range [][]Reader{a.Revoked, a.Expired} {
			for _, rd := range lists {
				lost = lost || local[rd.Account]
			}
		}
	}
	return lost
}
