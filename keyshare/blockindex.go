package keyshare

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	id, err := r.chainBlockOwner(ctx, c)
	if err != nil {
		return o, err
	}
	if id != "" {
		o.Chain = id
		return o, nil
	}
	prefix := recBlockPrefix(c)
	keys, err := listKeys(ctx, r.ds, prefix)
	if err != nil {
		return o, err
	}
	for _, k := range keys {
		root, err := cid.Decode(strings.TrimPrefix(k.String(), prefix))
		if err != nil {
			return o, fmt.Errorf("block index key %s: %w", k, err)
		}
		o.Records = append(o.Records, root)
	}
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
	if err := batch.Commit(ctx); err != nil {
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
	if err := batch.Commit(ctx); err != nil {
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
			switch body := e.Body.(type) {
			case *protocol.Record:
				if err := add(body.Record.Cid); err != nil {
					return err
				}
			case *protocol.Grant:
				for _, k := range body.Keys {
					if err := add(k.Record.Cid); err != nil {
						return err
					}
				}
			}
		}
	}
	return r.indexRecords(ctx, roots)
}

// MayServe tells whether this repo's node may send block c to the node
// with libp2p peer ID peerID (text form), and why. It is true only when
// the peer is a declared device of an account that
//
//   - for a block of a record's DAG: may read that record now (its author,
//     its subject, or a grantee whose grant is neither revoked nor
//     expired);
//   - for a chain block of account A: is A, or appears in a record of
//     which A is the author or the subject (so it needs A's chain to check
//     its grants and revocations).
//
// Every other block, including one the repo does not have or does not
// know, gives false. The answer is evaluated at the time of the call, so a
// revocation applies to the next request.
func (r *Repo) MayServe(ctx context.Context, peerID string, c cid.Cid) (ok bool, reason string, err error) {
	// Who the peer is comes first: it is cheap, and a peer that is no
	// account's node costs nothing more.
	accts, reps, err := r.declaredBy(ctx, peerID)
	if err != nil {
		return false, "", err
	}
	if len(accts) == 0 && len(reps) == 0 {
		return false, "peer is no declared device or replica of any account", nil
	}
	o, err := r.Owner(ctx, c)
	if err != nil {
		return false, "", err
	}
	if !o.Known() {
		return false, "block not in the access index", nil
	}
	if o.Chain != "" {
		for _, id := range reps {
			if id == o.Chain {
				return true, fmt.Sprintf("chain block of %s, whose declared replica the peer is", id), nil
			}
		}
		for _, id := range accts {
			if id == o.Chain {
				return true, fmt.Sprintf("chain block of %s, the peer's own account", o.Chain), nil
			}
		}
		theirs, err := r.recordsIn(ctx, o.Chain)
		if err != nil {
			return false, "", err
		}
		for _, id := range accts {
			mine, err := r.recordsIn(ctx, id)
			if err != nil {
				return false, "", err
			}
			for c := range mine {
				if !theirs[c] {
					continue
				}
				as, err := r.accessAll(ctx, c)
				if err != nil {
					return false, "", err
				}
				for _, a := range as {
					if a.Known && entitledToChain(a, o.Chain, id) {
						return true, fmt.Sprintf("chain block of %s, whom %s shares record %s with", o.Chain, id, c), nil
					}
				}
			}
		}
		return false, fmt.Sprintf("chain block of %s, which no account of the peer shares a record with", o.Chain), nil
	}
	// A record block is sent only if this node holds it (so no want for
	// it is left pending, to be answered without a check when it arrives).
	if has, err := r.st.Blockstore().Has(ctx, c); err != nil || !has {
		return false, "record block not held here", err
	}
	claims, contested, err := r.trustedClaims(ctx, o.Records)
	if err != nil {
		return false, "", err
	}
	for _, a := range claims {
		for _, id := range reps {
			if a.Subject == id || a.Author == id {
				return true, fmt.Sprintf("block of record %s, kept by a declared replica of %s", a.Record, id), nil
			}
		}
		for _, id := range accts {
			if rd, ok := a.Reader(id); ok {
				return true, fmt.Sprintf("block of record %s, which %s may read as %s", a.Record, id, rd.Role), nil
			}
		}
	}
	if contested {
		return false, "record block claimed more than once, and no account of this repo vouches for a claim that lets the peer read it", nil
	}
	return false, "no account of the peer may read the record now", nil
}

// trustedClaims returns the record claims the serving decision may rest
// on, for a block that belongs to the record roots given. Normally that is
// the one claim of the one record. When the block is claimed more than
// once — two entries for one CID, or a block that is also claimed as a
// record of its own (an inner block, or the same bytes under another
// codec) — anyone who learned a CID could have made the other claim, so
// only claims whose author or subject is an account of this repo count.
func (r *Repo) trustedClaims(ctx context.Context, roots []cid.Cid) (claims []*Access, contested bool, err error) {
	var all []*Access
	for _, root := range roots {
		as, err := r.accessAll(ctx, root)
		if err != nil {
			return nil, false, err
		}
		for _, a := range as {
			if a.Known {
				all = append(all, a)
			}
		}
	}
	if len(all) <= 1 {
		return all, false, nil
	}
	for _, a := range all {
		local, err := r.isLocal(ctx, a.Author)
		if err != nil {
			return nil, true, err
		}
		if !local {
			if local, err = r.isLocal(ctx, a.Subject); err != nil {
				return nil, true, err
			}
		}
		if local {
			claims = append(claims, a)
		}
	}
	return claims, true, nil
}

func (r *Repo) isLocal(ctx context.Context, id protocol.AccountID) (bool, error) {
	return r.ds.Has(ctx, keyLocal(id))
}

// recordsIn returns the CIDs of the records account id appears in (the
// keys RecordsOf reads), without evaluating them.
func (r *Repo) recordsIn(ctx context.Context, id protocol.AccountID) (map[cid.Cid]bool, error) {
	prefix := "/keyshare/idx/acct/" + string(id) + "/"
	keys, err := listKeys(ctx, r.ds, prefix)
	if err != nil {
		return nil, err
	}
	out := make(map[cid.Cid]bool, len(keys))
	for _, k := range keys {
		c, err := cid.Decode(strings.TrimPrefix(k.String(), prefix))
		if err != nil {
			return nil, fmt.Errorf("index key %s: %w", k, err)
		}
		out[c] = true
	}
	return out, nil
}

// entitledToChain tells whether record access state a entitles account id
// to the chain of account owner: owner wrote a record id may read (or could
// until a revocation, which id must be able to learn of), or owner is the
// subject and granted it to id, or id wrote it about owner and owner
// acknowledged it. Merely naming owner as the subject of a record entry
// does not open owner's chain to its writer.
func entitledToChain(a *Access, owner, id protocol.AccountID) bool {
	_, reader := a.Reader(id)
	revoked := slices.ContainsFunc(a.Revoked, func(r Reader) bool { return r.Account == id })
	switch {
	case a.Author == owner:
		return reader || revoked
	case a.Subject == owner && a.Author == id:
		return a.Acked
	case a.Subject == owner:
		// Only the owner's own grants (and revocations) count: keys an
		// author wrapped at creation for third parties do not open the
		// subject's chain to them.
		rd, _ := a.Reader(id)
		return (reader && rd.Via.Account == owner) || revoked
	}
	return false
}
