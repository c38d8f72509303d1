package keyshare

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

// A recovery export (`recovery export`) is what a recovery contact hands
// the owner of an account for a new device: a CARv1 whose roots are the
// account's chain head, the chain of each recovery contact the account's
// live setup names that is a local account here (the exporter's own,
// whole), the first block of each other contact this repo holds (its
// profile with the nodes it declared at creation), and one raw block of address hints: where
// this repo last reached those contacts' nodes (its address book, and
// the exporting node's own addresses). Importing it (any CAR import)
// keeps a hinted address only for a node a chain declares that the
// importer's book holds nothing for (keepHintedAddrs), so the new node
// can dial the contacts by itself.

// Bounds of an address hints block.
const (
	MaxHintBlock = 32 << 10 // bytes of the raw block
	MaxHintPeers = 64       // peers in it (the rest make the import fail)
)

// addrHintsVersion marks the raw block's JSON as address hints.
const addrHintsVersion = 1

// addrHints is the raw block of address hints in a recovery export.
type addrHints struct {
	Version int         `json:"blockmrs_addr_hints"`
	Peers   []KeptAddrs `json:"peers"`
}

// RecoveryExported says what a recovery export holds.
type RecoveryExported struct {
	// Account is the account whose chain it holds whole.
	Account protocol.AccountID `json:"account"`
	// Contacts are the recovery contacts whose first block it holds.
	Contacts []protocol.AccountID `json:"contacts"`
	// Peers are the contacts' nodes it gives addresses for.
	Peers []string `json:"peers"`
}

// ExportRecovery writes account id's recovery export to w (see above).
// self is the exporting node's peer ID and listen addresses (empty when
// no node runs). It refuses an account whose live recovery setup names
// no local account (exportRecovery).
func (r *Repo) ExportRecovery(ctx context.Context, w io.Writer, id protocol.AccountID, self KeptAddrs) (RecoveryExported, error) {
	st, err := r.state(ctx, id)
	if err != nil {
		return RecoveryExported{}, err
	}
	local, err := r.localKeys(ctx)
	if err != nil {
		return RecoveryExported{}, err
	}
	out := RecoveryExported{Account: id, Contacts: []protocol.AccountID{}, Peers: []string{}}
	if d := exportRecovery(st.Recovery, local); !d.Allow {
		return out, fmt.Errorf("recovery export of %s: %s", id, d.Reason)
	}
	roots := []cid.Cid{st.head()}
	var hints addrHints
	for _, key := range st.Recovery.Contacts {
		c := protocol.AccountIDFromKey(key)
		root, ok, err := r.blockAt(ctx, c, 0)
		if err != nil {
			return out, err
		}
		if !ok {
			continue // a contact this repo does not know: nothing to hand
		}
		if slices.ContainsFunc(local, func(l []byte) bool { return bytes.Equal(l, key) }) {
			cst, err := r.state(ctx, c)
			if err != nil {
				return out, err
			}
			root = cst.head() // the exporter's own chain, whole: the nodes it declared since
		}
		roots = append(roots, root)
		out.Contacts = append(out.Contacts, c)
		devs, err := r.DevicesOf(ctx, c)
		if err != nil {
			return out, err
		}
		for _, p := range devs {
			addrs, err := r.PeerAddrs(ctx, p)
			if err != nil {
				return out, err
			}
			if p == self.Peer {
				addrs = self.Addrs
			}
			if len(addrs) > MaxPeerAddrs {
				addrs = addrs[:MaxPeerAddrs]
			}
			if len(addrs) > 0 && len(hints.Peers) < MaxHintPeers && !hintsHold(hints, p) {
				hints.Peers = append(hints.Peers, KeptAddrs{Peer: p, Addrs: addrs})
				out.Peers = append(out.Peers, p)
			}
		}
	}
	hintsCID := cid.Undef
	if len(hints.Peers) > 0 {
		if hintsCID, err = r.putHints(ctx, hints); err != nil {
			return out, err
		}
		roots = append(roots, hintsCID)
	}
	notChain := func(c cid.Cid) bool { return c.Prefix().Codec != protocol.DagCBORCodec && !c.Equals(hintsCID) }
	return out, r.st.ExportCAR(ctx, w, roots, store.ExportSkip(notChain), store.ExportAllowMissing(func(cid.Cid) {}))
}

func hintsHold(h addrHints, peer string) bool {
	for _, k := range h.Peers {
		if k.Peer == peer {
			return true
		}
	}
	return false
}

// putHints stores h as a raw block (an export reads blocks from the
// store) and returns its CID.
func (r *Repo) putHints(ctx context.Context, h addrHints) (cid.Cid, error) {
	h.Version = addrHintsVersion
	raw, err := json.Marshal(h)
	if err != nil {
		return cid.Undef, err
	}
	if len(raw) > MaxHintBlock {
		return cid.Undef, fmt.Errorf("address hints: %d bytes, at most %d", len(raw), MaxHintBlock)
	}
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(raw)
	if err != nil {
		return cid.Undef, err
	}
	blk, err := blocks.NewBlockWithCid(raw, c)
	if err != nil {
		return cid.Undef, err
	}
	if err := r.st.Blockstore().Put(ctx, blk); err != nil {
		return cid.Undef, fmt.Errorf("address hints: %w", err)
	}
	return c, nil
}

// splitHintRoots parts a CAR's roots into chain blocks and the address
// hints raw roots carry (at most one raw root, at most MaxHintBlock
// bytes, MaxHintPeers peers), read with get.
func splitHintRoots(roots []cid.Cid, get func(cid.Cid) ([]byte, error)) ([]cid.Cid, []KeptAddrs, error) {
	var chain []cid.Cid
	var hints []KeptAddrs
	raws := 0
	for _, c := range roots {
		if c.Prefix().Codec != cid.Raw {
			chain = append(chain, c)
			continue
		}
		if raws++; raws > 1 {
			return nil, nil, errors.New("more than one raw root (address hints): want a file from 'blockmrs recovery export'")
		}
		raw, err := get(c)
		if err != nil {
			return nil, nil, fmt.Errorf("address hints %s: %w", c, err)
		}
		var h addrHints
		if len(raw) > MaxHintBlock {
			return nil, nil, fmt.Errorf("address hints: %d bytes, at most %d", len(raw), MaxHintBlock)
		}
		if err := json.Unmarshal(raw, &h); err != nil || h.Version != addrHintsVersion {
			return nil, nil, errors.New("a raw root that is no address hints block: want a file from 'blockmrs recovery export'")
		}
		if len(h.Peers) > MaxHintPeers {
			return nil, nil, fmt.Errorf("address hints for %d peers, at most %d", len(h.Peers), MaxHintPeers)
		}
		for _, k := range h.Peers {
			if _, err := protocol.ParsePeerID(k.Peer); err != nil {
				return nil, nil, fmt.Errorf("address hints: %w", err)
			}
		}
		hints = h.Peers
	}
	return chain, hints, nil
}

// keepHints keeps the hinted addresses the access policy lets in
// (keepHintedAddrs), after the chains that declare the peers were
// imported; it logs what it kept and what it left.
func (r *Repo) keepHints(ctx context.Context, hints []KeptAddrs) error {
	for _, h := range hints {
		roles, err := r.declaredBy(ctx, h.Peer)
		if err != nil {
			return err
		}
		kept, err := r.PeerAddrs(ctx, h.Peer)
		if err != nil {
			return err
		}
		d := keepHintedAddrs(roles, len(kept) > 0)
		if !d.Allow {
			slog.Info("keyshare: address hint not kept", "peer", h.Peer, "rule", d.Rule, "why", d.Reason)
			continue
		}
		if _, _, err := r.KeepPeerAddrs(ctx, h.Peer, h.Addrs); err != nil {
			return err
		}
		slog.Info("keyshare: address hint kept", "peer", h.Peer, "addrs", len(h.Addrs))
	}
	return nil
}
