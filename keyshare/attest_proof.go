package keyshare

// Role proofs: how a node verifies the role of an account it has never
// met. A node that knows the account (its own node, or its clinic's)
// hands out, to anyone, the blocks a verifier needs: the account's
// profile (its first chain block, public when the account is local or
// attested by a local account) and the whole chains of the clinics and
// authorities on the attestation paths up from it (public by design:
// serveRoleChain). The verifier applies them like any chain (signatures,
// links, forks, no rollback) and judges the role itself with its own
// trust list: nothing the serving node says about the role is taken.
//
// Freshness: the verifier knows the attesters' chains as far as the
// newest copy it was given. A node that hides a withdrawal can only show
// a chain the verifier already holds further; once any node has brought
// the withdrawal, no older copy undoes it. Asking the attester's own node
// (the directory does) gives its latest word.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Role proof limits (the wire's: protocol.MaxRoleProofBlocks, …).
const (
	// MaxRoleProofBlocks bounds the blocks in one role proof.
	MaxRoleProofBlocks = protocol.MaxRoleProofBlocks
	// MaxRoleProofBytes bounds their total size.
	MaxRoleProofBytes = protocol.MaxRoleProofBytes
)

// RoleProofBlocks returns the blocks a node that has never met account
// id needs to verify its role: id's first chain block when it may be
// given out (serveProfile, serveAttestedProfile), then the chains of the
// clinics and authorities on the attestation paths up from id
// (serveRoleChain), each from its head down to the block after the
// sequence number held names for it (to genesis when absent), nearest
// attesters first. A chain that does not fit in the limits is left out
// whole. It returns nil when there is nothing to give.
func (r *Repo) RoleProofBlocks(ctx context.Context, id protocol.AccountID, held map[protocol.AccountID]uint64) ([][]byte, error) {
	if _, err := r.state(ctx, id); errors.Is(err, ErrUnknownAccount) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out [][]byte
	total := 0
	if _, ok := held[id]; !ok {
		may, err := r.mayGiveProfile(ctx, id)
		if err != nil {
			return nil, err
		}
		if may.Allow {
			genesis, ok, err := r.blockAt(ctx, id, 0)
			if err != nil {
				return nil, err
			}
			if ok {
				raws, err := r.ChainBack(ctx, genesis, NoneHeld, 1, MaxRoleProofBytes)
				if err != nil {
					return nil, err
				}
				out, total = append(out, raws...), total+len(raws[0])
			}
		}
	}
	f, err := r.roleFacts(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, a := range attestersUp(id, f) {
		role := f.declared[a]
		attests, err := r.attestsAny(ctx, a)
		if err != nil {
			return nil, err
		}
		if d := serveRoleChain(role, attests); !d.Allow {
			continue
		}
		info, err := r.state(ctx, a)
		if err != nil {
			return nil, err
		}
		after := NoneHeld
		if seq, ok := held[a]; ok {
			if seq >= info.Seq {
				continue
			}
			after = seq
		}
		raws, err := r.ChainBack(ctx, info.head(), after, MaxRoleProofBlocks-len(out), MaxRoleProofBytes-total)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, b := range raws {
			n += len(b)
		}
		want := info.Seq + 1
		if after != NoneHeld {
			want = info.Seq - after
		}
		if uint64(len(raws)) != want || total+n > MaxRoleProofBytes {
			continue // does not fit whole
		}
		out, total = append(out, raws...), total+n
	}
	return out, nil
}

// attestersUp lists the attesters on paths up from id in f, nearest
// first (breadth first, by attester ID within a level).
func attestersUp(id protocol.AccountID, f *roleFacts) []protocol.AccountID {
	var out []protocol.AccountID
	seen := map[protocol.AccountID]bool{id: true}
	level := []protocol.AccountID{id}
	for depth := 0; depth < MaxRolePath && len(level) > 0; depth++ {
		var next []protocol.AccountID
		for _, a := range level {
			for _, ev := range f.attests[a] {
				if !seen[ev.Attester] {
					seen[ev.Attester] = true
					if _, known := f.declared[ev.Attester]; known {
						next = append(next, ev.Attester)
					}
				}
			}
		}
		out = append(out, next...)
		level = next
	}
	return out
}

// attestsAny tells whether account a's chain attests any account.
func (r *Repo) attestsAny(ctx context.Context, a protocol.AccountID) (bool, error) {
	evs, err := r.attestsBy(ctx, a)
	return len(evs) > 0, err
}

// mayGiveProfile decides whether id's profile goes to anyone: it is a
// local account's (serveProfile), or a local account attests it live
// (serveAttestedProfile).
func (r *Repo) mayGiveProfile(ctx context.Context, id protocol.AccountID) (Decision, error) {
	local, err := r.isLocal(ctx, id)
	if err != nil {
		return Decision{}, err
	}
	if d := serveProfile(local, false, false); d.Allow {
		return d, nil
	}
	evs, err := r.attestsOf(ctx, id)
	if err != nil {
		return Decision{}, err
	}
	now := r.now()
	byLocal := false
	for _, ev := range evs {
		if ev.End || (ev.Expires != 0 && !now.Before(time.UnixMilli(ev.Expires))) {
			continue
		}
		if l, err := r.isLocal(ctx, ev.Attester); err != nil {
			return Decision{}, err
		} else if l {
			byLocal = true
			break
		}
	}
	return serveAttestedProfile(byLocal), nil
}

// ApplyRoleProof verifies and applies the blocks of a role proof for
// account id (RoleProofBlocks on another node): id's first block, and
// chains of accounts that declare clinic or authority. Blocks of any
// other account are ignored; each chain is applied on its own, so one
// bad chain does not keep the others out. It returns what changed and
// the problems met (a chain that did not verify), which refuse nothing
// by themselves: a role whose chains are missing is not verified.
func (r *Repo) ApplyRoleProof(ctx context.Context, id protocol.AccountID, raws [][]byte) (changed []protocol.AccountID, problems []string, err error) {
	return r.applyProof(ctx, map[protocol.AccountID]bool{id: true}, raws)
}

// applyProof is ApplyRoleProof for the accounts in subjects (first blocks
// alone) and clinic or authority chains.
func (r *Repo) applyProof(ctx context.Context, subjects map[protocol.AccountID]bool, raws [][]byte) (changed []protocol.AccountID, problems []string, err error) {
	if len(raws) > MaxRoleProofBlocks {
		return nil, nil, fmt.Errorf("role proof: %d blocks, limit %d", len(raws), MaxRoleProofBlocks)
	}
	type chain struct {
		head    cid.Cid
		headSeq uint64
		genesis *protocol.Block
		blocks  map[cid.Cid][]byte
	}
	chains := map[protocol.AccountID]*chain{}
	var order []protocol.AccountID
	for i, raw := range raws {
		b, err := protocol.DecodeBlock(raw)
		if err != nil {
			problems = append(problems, fmt.Sprintf("block %d: %v", i, err))
			continue
		}
		a := b.AuthorID()
		ch, ok := chains[a]
		if !ok {
			ch = &chain{blocks: map[cid.Cid][]byte{}}
			chains[a] = ch
			order = append(order, a)
		}
		c := protocol.BlockCID(raw)
		ch.blocks[c] = raw
		if !ch.head.Defined() || b.Seq > ch.headSeq {
			ch.head, ch.headSeq = c, b.Seq
		}
		if b.Seq == 0 {
			ch.genesis = b
		}
	}
	for _, a := range order {
		ch := chains[a]
		if subjects[a] && !r.roleChainRole(ctx, a, ch.genesis) {
			if ch.headSeq != 0 || len(ch.blocks) != 1 {
				problems = append(problems, fmt.Sprintf("%s: only its first block is taken", a))
				continue
			}
		} else if d := r.roleChainRole(ctx, a, ch.genesis); !d {
			problems = append(problems, fmt.Sprintf("%s: not a clinic or authority chain, ignored", a))
			continue
		}
		res, err := r.ApplyChains(ctx, []cid.Cid{ch.head}, ch.blocks)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", a, err))
			continue
		}
		if res.NewBlocks > 0 {
			changed = append(changed, a)
		}
	}
	slices.Sort(changed)
	return changed, problems, nil
}

// roleChainRole tells whether account a declares clinic or authority, in
// the chain the repo holds or else in the offered first block.
func (r *Repo) roleChainRole(ctx context.Context, a protocol.AccountID, genesis *protocol.Block) bool {
	role := protocol.Role("")
	if st, err := r.state(ctx, a); err == nil {
		role = st.Role
	} else if genesis != nil && len(genesis.Entries) > 0 {
		if p, ok := genesis.Entries[0].Body.(*protocol.Profile); ok {
			role = p.Role
		}
	}
	return role == protocol.RoleClinic || role == protocol.RoleAuthority
}

// HeldForProof says which chains on the attestation paths up from id this
// repo holds, and how far (id's own included when held), at most
// protocol.MaxRoleProofHeldChains: what a role-proof request tells the
// serving node, so that only newer blocks come.
func (r *Repo) HeldForProof(ctx context.Context, id protocol.AccountID) (map[protocol.AccountID]uint64, error) {
	out := map[protocol.AccountID]uint64{}
	st, err := r.state(ctx, id)
	if errors.Is(err, ErrUnknownAccount) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	out[id] = st.Seq
	f, err := r.roleFacts(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, a := range attestersUp(id, f) {
		if len(out) >= protocol.MaxRoleProofHeldChains {
			break
		}
		if s, err := r.state(ctx, a); err == nil {
			out[a] = s.Seq
		}
	}
	return out, nil
}

// ProofApplied is what applying a role proof fetched from a node changed.
type ProofApplied struct {
	// Changed lists the chains that were new or advanced.
	Changed []protocol.AccountID `json:"changed"`
	// Problems lists blocks or chains that were not taken.
	Problems []string `json:"problems,omitempty"`
}

// ApplyAttesterChains is ApplyRoleProof without the account's own first
// block: only clinic and authority chains are taken. It is what a node
// applies for a stranger (the requester of an access request), so that
// judging a stranger's role does not make the stranger a known account.
func (r *Repo) ApplyAttesterChains(ctx context.Context, raws [][]byte) (changed []protocol.AccountID, problems []string, err error) {
	return r.applyProof(ctx, nil, raws)
}
