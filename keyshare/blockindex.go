package keyshare

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	mh "github.com/multiformats/go-multihash"

	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

// The block index maps every block the repo may serve to what it belongs
// to: a chain block to its author, a block of a record's DAG to the
// record's root. It is keyed by multihash, not CID, because the store
// keeps blocks by multihash: a peer asking for the same bytes under another
// codec or CID version must get the same answer as for the original CID.
//
//	/keyshare/chainblk/<multihash>          → author account ID
//	/keyshare/recblk/<multihash>/<root CID> → (empty)
//
// Chain blocks are indexed in the batch that applies them (see commit);
// record blocks when a record is added and when an import brings records.

func mhKey(h mh.Multihash) string { return h.B58String() }

func keyChainBlock(c cid.Cid) datastore.Key {
	return datastore.NewKey("/keyshare/chainblk/" + mhKey(c.Hash()))
}

func recBlockPrefix(c cid.Cid) string {
	return "/keyshare/recblk/" + mhKey(c.Hash()) + "/"
}

func keyRecordBlock(c, root cid.Cid) datastore.Key {
	return datastore.NewKey(recBlockPrefix(c) + root.String())
}

// indexChainBlock adds chain block c of account id to batch w.
func indexChainBlock(ctx context.Context, w datastore.Write, c cid.Cid, id protocol.AccountID) error {
	return w.Put(ctx, keyChainBlock(c), []byte(id))
}

// BlockOwner says what a block belongs to. At most one of its fields is
// set for a block the repo knows; both are empty for any other block.
type BlockOwner struct {
	// Chain is the author of the chain block, when the block is one.
	Chain protocol.AccountID `json:"chain,omitempty"`
	// Records lists the roots of the record DAGs the block is part of
	// (normally one: the record itself or the one it is a block of).
	Records []cid.Cid `json:"records,omitempty"`
}

// Known tells whether the block belongs to anything the repo knows.
func (o BlockOwner) Known() bool { return o.Chain != "" || len(o.Records) > 0 }

// Owner returns what block c belongs to: a chain block of an account the
// repo holds the chain of (at that position of the chain: fork evidence
// is not a chain block), or a block of one or more record DAGs the repo
// stored. A block of neither gives a zero BlockOwner and no error.
func (r *Repo) Owner(ctx context.Context, c cid.Cid) (BlockOwner, error) {
	var o BlockOwner
	if !c.Defined() {
		return o, nil
	}
	if cached, ok := cacheGet(&r.cache, &r.cache.owners, mhKey(c.Hash())); ok {
		return cached, nil
	}
	gen := r.cache.generation()
	id, err := r.chainBlockOwner(ctx, c)
	if err != nil {
		return o, err
	}
	if id != "" {
		o.Chain = id
		cachePut(&r.cache, &r.cache.owners, gen, mhKey(c.Hash()), o)
		return o, nil
	}
	if o.Records, err = r.cidsUnder(ctx, recBlockPrefix(c)); err != nil {
		return o, err
	}
	cachePut(&r.cache, &r.cache.owners, gen, mhKey(c.Hash()), o)
	return o, nil
}

// chainBlockOwner returns the author of chain block c, or "" when c is
// not a block of a chain the repo holds. It reads the block index only:
// it runs for every block a peer asks for, so it must not read blocks.
func (r *Repo) chainBlockOwner(ctx context.Context, c cid.Cid) (protocol.AccountID, error) {
	b, err := r.ds.Get(ctx, keyChainBlock(c))
	if errors.Is(err, datastore.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read block index: %w", err)
	}
	return protocol.AccountID(b), nil
}

// keyChainIndexDone marks a repo whose chain-block index covers every
// chain block (repos from before the index get it on open).
var keyChainIndexDone = datastore.NewKey("/keyshare/chainblk-complete")

// completeChainBlockIndex indexes the chain blocks of repos written before
// the chain-block index existed, from the sequence index, once.
func (r *Repo) completeChainBlockIndex(ctx context.Context) error {
	if done, err := r.ds.Has(ctx, keyChainIndexDone); err != nil || done {
		return err
	}
	res, err := r.ds.Query(ctx, query.Query{Prefix: "/keyshare/seq/"})
	if err != nil {
		return fmt.Errorf("index chain blocks: %w", err)
	}
	entries, err := res.Rest()
	if err != nil {
		return fmt.Errorf("index chain blocks: %w", err)
	}
	batch, err := r.ds.Batch(ctx)
	if err != nil {
		return err
	}
	for _, e := range entries {
		// /keyshare/seq/ACCOUNT/SEQ
		parts := strings.Split(strings.TrimPrefix(e.Key, "/keyshare/seq/"), "/")
		c, err := cid.Cast(e.Value)
		if len(parts) != 2 || err != nil {
			return fmt.Errorf("index chain blocks: bad sequence entry %s", e.Key)
		}
		if err := indexChainBlock(ctx, batch, c, protocol.AccountID(parts[0])); err != nil {
			return err
		}
	}
	if err := batch.Put(ctx, keyChainIndexDone, nil); err != nil {
		return err
	}
	done := r.cache.writing()
	err = batch.Commit(ctx)
	done()
	if err != nil {
		return fmt.Errorf("index chain blocks: %w", err)
	}
	return nil
}

// IndexRecordBlocks records that every block of the DAG rooted at root
// that the repo holds, and every block those link to, belongs to the
// record root. Missing blocks end their branch without error, so a record
// that arrived in part is indexed as far as it goes. Raw leaves are not
// read. Indexing a root that is not a record is harmless: access to it is
// judged by the record's facts, and a root without facts is served to no
// one.
func (r *Repo) IndexRecordBlocks(ctx context.Context, root cid.Cid) error {
	return r.indexRecords(ctx, []cid.Cid{root})
}

// indexRecords indexes the DAGs of roots in one batch.
func (r *Repo) indexRecords(ctx context.Context, roots []cid.Cid) error {
	if len(roots) == 0 {
		return nil
	}
	batch, err := r.ds.Batch(ctx)
	if err != nil {
		return err
	}
	bs := r.st.Blockstore()
	for _, root := range roots {
		seen := map[string]bool{}
		stack := []cid.Cid{root}
		for len(stack) > 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[c.KeyString()] {
				continue
			}
			seen[c.KeyString()] = true
			if err := batch.Put(ctx, keyRecordBlock(c, root), nil); err != nil {
				return err
			}
			if c.Prefix().Codec == cid.Raw {
				continue // no links: no need to read it
			}
			blk, err := bs.Get(ctx, c)
			if err != nil {
				if errors.Is(err, store.ErrMissing) {
					continue
				}
				return fmt.Errorf("index record %s: %w", root, err)
			}
			links, err := store.Links(blk)
			if err != nil {
				return fmt.Errorf("index record %s: %w", root, err)
			}
			for i := len(links) - 1; i >= 0; i-- {
				stack = append(stack, links[i])
			}
		}
	}
	done := r.cache.writing()
	err = batch.Commit(ctx)
	done()
	if err != nil {
		return fmt.Errorf("commit block index: %w", err)
	}
	return nil
}

// indexImportedRecords indexes the record DAGs that record and grant
// entries of newly applied blocks name, for those whose root the repo
// holds.
func (r *Repo) indexImportedRecords(ctx context.Context, vbs []verifiedBlock) error {
	var roots []cid.Cid
	seen := map[cid.Cid]bool{}
	add := func(c cid.Cid) error {
		if seen[c] {
			return nil
		}
		seen[c] = true
		has, err := r.st.Blockstore().Has(ctx, c)
		if err != nil {
			return err
		}
		if has {
			roots = append(roots, c)
		}
		return nil
	}
	for _, vb := range vbs {
		for _, e := range vb.block.Entries {
			var keys []protocol.RecordKey
			switch body := e.Body.(type) {
			case *protocol.Record:
				if err := add(body.Record.Cid); err != nil {
					return err
				}
			case *protocol.Grant:
				keys = body.Keys
			case *protocol.ScopedKeys:
				keys = body.Keys
			case *protocol.WardGrant:
				keys = body.Keys
			}
			for _, k := range keys {
				if err := add(k.Record.Cid); err != nil {
					return err
				}
			}
		}
	}
	return r.indexRecords(ctx, roots)
}

// MayServe decides whether this repo's node may send block c to the node
// with libp2p peer ID peerID (text form), by the access policy
// (serveRecordBlock and serveChainBlock in policy.go): only to a declared
// device or replica of an account entitled to it, and for a record block
// only under claims that count on this node. Every other block, including
// one the repo does not have or does not know, is refused. The decision is
// made at the time of the call, so a revocation applies to the next
// request. Its cost does not grow with the number of accounts or records
// the repo holds: the peer's accounts are one read of the peer index, and
// for a chain block only the records the two accounts share are
// evaluated.
func (r *Repo) MayServe(ctx context.Context, peerID string, c cid.Cid) (Decision, error) {
	// Who the peer is comes first: it is cheap, and a peer that is no
	// account's node costs nothing more.
	roles, err := r.declaredBy(ctx, peerID)
	if err != nil {
		return Decision{}, err
	}
	if !roles.known() {
		return serveRecordBlock(roles, nil, false, nil), nil
	}
	o, err := r.Owner(ctx, c)
	if err != nil {
		return Decision{}, err
	}
	if !o.Known() {
		return refuse(RuleBlockUnknown, "block not in the access index"), nil
	}
	v, err := r.vouchSet(ctx)
	if err != nil {
		return Decision{}, err
	}
	if o.Chain != "" {
		return r.chainDecision(ctx, roles, o.Chain, v)
	}
	// A record block is sent only if this node holds it (so no want for
	// it is left pending, to be answered without a check when it arrives).
	held, err := r.st.Blockstore().Has(ctx, c)
	if err != nil {
		return Decision{}, err
	}
	var claims []*Access
	for _, root := range o.Records {
		as, err := r.accessAll(ctx, root)
		if err != nil {
			return Decision{}, err
		}
		for _, a := range as {
			if a.Known {
				claims = append(claims, a)
			}
		}
	}
	return serveRecordBlock(roles, claims, held, v), nil
}

// chainDecision applies serveChainBlock to the chain of owner, loading
// only the records owner shares with the peer's accounts.
func (r *Repo) chainDecision(ctx context.Context, roles peerRoles, owner protocol.AccountID, v vouchSet) (Decision, error) {
	shared := map[protocol.AccountID][]*Access{}
	for _, id := range roles.acting {
		recs, err := r.sharedRecords(ctx, owner, id)
		if err != nil {
			return Decision{}, err
		}
		for _, rc := range recs {
			as, err := r.accessAll(ctx, rc)
			if err != nil {
				return Decision{}, err
			}
			shared[id] = append(shared[id], as...)
		}
	}
	scopes, err := r.scopesOf(ctx, owner)
	if err != nil {
		return Decision{}, err
	}
	d := serveChain(roles, owner, shared, scopes, v)
	if d.Allow || d.Rule != RuleChainNotShared {
		return d, nil
	}
	guardians, wards, err := r.guardianLinksServed(ctx, owner, roles.acting)
	if err != nil {
		return Decision{}, err
	}
	if d = serveChainGuardian(roles, owner, guardians, wards, d); d.Allow {
		return d, nil
	}
	st, err := r.state(ctx, owner)
	if err != nil {
		return Decision{}, err
	}
	return serveChainToContacts(d, roles, owner, st.Recovery), nil
}

// ChainsServedTo lists the accounts whose chains this node may send to
// the peer with ID peerID (text form), by the same rule as MayServe for
// their chain blocks. Only the accounts the peer's accounts share a record
// with are considered (the shared-record index lists them), so the cost
// follows what the peer is entitled to, not how many accounts the repo
// knows.
func (r *Repo) ChainsServedTo(ctx context.Context, peerID string) ([]protocol.AccountID, error) {
	roles, err := r.declaredBy(ctx, peerID)
	if err != nil || !roles.known() {
		return nil, err
	}
	v, err := r.vouchSet(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[protocol.AccountID]bool{}
	candidates := append(append([]protocol.AccountID(nil), roles.acting...), roles.replicating...)
	for _, id := range roles.acting {
		shared, err := namesUnder(ctx, r.ds, sharedPrefix+string(id)+"/") // OTHER/RECORD
		if err != nil {
			return nil, err
		}
		for _, n := range shared {
			other, _, _ := strings.Cut(n, "/")
			candidates = append(candidates, protocol.AccountID(other))
		}
		granters, err := r.scopeGranters(ctx, id)
		if err != nil {
			return nil, err
		}
		candidates = append(candidates, granters...)
		linked, err := r.GuardianLinks(ctx, id)
		if err != nil {
			return nil, err
		}
		candidates = append(candidates, linked...)
		recovering, err := r.recoveryOwners(ctx, id)
		if err != nil {
			return nil, err
		}
		candidates = append(candidates, recovering...)
	}
	var out []protocol.AccountID
	for _, owner := range candidates {
		if seen[owner] {
			continue
		}
		seen[owner] = true
		if _, err := r.state(ctx, owner); errors.Is(err, ErrUnknownAccount) {
			continue
		} else if err != nil {
			return nil, err
		}
		d, err := r.chainDecision(ctx, roles, owner, v)
		if err != nil {
			return nil, err
		}
		if d.Allow {
			out = append(out, owner)
		}
	}
	return out, nil
}

func (r *Repo) isLocal(ctx context.Context, id protocol.AccountID) (bool, error) {
	return r.ds.Has(ctx, keyLocal(id))
}
