package keyshare

// The clinic directory (PROTOCOL.md §10.4). A node answers, for anyone,
// which clinicians the clinics it holds keys for attest, live, with the
// blocks that prove it; the asking node applies the blocks and judges
// every entry with its own trust list. Public by design: a clinic's
// attestations are on its public chain anyway.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// DirectoryAnswer is what a clinic's node answers a directory query:
// the entries and the blocks that prove them.
type DirectoryAnswer struct {
	Entries []protocol.DirectoryEntry
	Blocks  [][]byte
}

// AnswerDirectory answers a directory query on this node: the live
// attestations of clinicians by the local clinic accounts (only clinic's
// when it is set), whose name or department contains query (case
// folded), by name, at most limit (protocol.MaxDirectoryResults when 0 or
// more). The blocks are each listed clinic's whole chain, the chains of
// the authorities above it, and each entry's first block.
func (r *Repo) AnswerDirectory(ctx context.Context, clinic protocol.AccountID, query string, limit int) (*DirectoryAnswer, error) {
	if limit <= 0 || limit > protocol.MaxDirectoryResults {
		limit = protocol.MaxDirectoryResults
	}
	locals, err := r.accountsUnder(ctx, "/keyshare/local/")
	if err != nil {
		return nil, err
	}
	now := r.now()
	q := strings.ToLower(query)
	type hit struct {
		entry protocol.DirectoryEntry
		name  string
	}
	var hits []hit
	var clinics []protocol.AccountID
	for _, id := range locals {
		if clinic != "" && id != clinic {
			continue
		}
		ls, err := r.state(ctx, id)
		if err != nil {
			return nil, err
		}
		if ls.Role != protocol.RoleClinic {
			continue
		}
		clinics = append(clinics, id)
		evs, err := r.attestsBy(ctx, id)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if ev.End || ev.Role != protocol.RoleClinician || (ev.Expires != 0 && !now.Before(time.UnixMilli(ev.Expires))) {
				continue
			}
			st, err := r.state(ctx, ev.To)
			if errors.Is(err, ErrUnknownAccount) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if q != "" && !strings.Contains(strings.ToLower(st.Name), q) && !strings.Contains(strings.ToLower(ev.Department), q) {
				continue
			}
			hits = append(hits, hit{name: strings.ToLower(st.Name), entry: protocol.DirectoryEntry{
				Clinic: keyOf(id), Account: keyOf(ev.To), Name: st.Name, Role: st.Role,
				Department: ev.Department, Emergency: ev.Emergency, Expires: ev.Expires}})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return strings.Compare(a.name, b.name) })
	if len(hits) > limit {
		hits = hits[:limit]
	}
	ans := &DirectoryAnswer{Entries: make([]protocol.DirectoryEntry, 0, len(hits))}
	seen := map[cid.Cid]bool{}
	total := 0
	add := func(raws [][]byte) bool {
		n := 0
		for _, b := range raws {
			if !seen[protocol.BlockCID(b)] {
				n += len(b)
			}
		}
		if len(ans.Blocks)+len(raws) > MaxRoleProofBlocks || total+n > MaxRoleProofBytes {
			return false
		}
		for _, b := range raws {
			if c := protocol.BlockCID(b); !seen[c] {
				seen[c] = true
				ans.Blocks = append(ans.Blocks, b)
			}
		}
		total += n
		return true
	}
	for _, c := range clinics {
		st, err := r.state(ctx, c)
		if err != nil {
			return nil, err
		}
		own, err := r.ChainBack(ctx, st.head(), NoneHeld, MaxRoleProofBlocks, MaxRoleProofBytes)
		if err != nil {
			return nil, err
		}
		up, err := r.RoleProofBlocks(ctx, c, map[protocol.AccountID]uint64{c: st.Seq})
		if err != nil {
			return nil, err
		}
		add(own)
		add(up)
	}
	for _, h := range hits {
		id := protocol.AccountIDFromKey(h.entry.Account)
		genesis, ok, err := r.blockAt(ctx, id, 0)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		raws, err := r.ChainBack(ctx, genesis, NoneHeld, 1, MaxRoleProofBytes)
		if err != nil {
			return nil, err
		}
		if add(raws) {
			ans.Entries = append(ans.Entries, h.entry)
		}
	}
	return ans, nil
}

// DirectoryResult is one directory entry as this node judges it: names
// from the chains it now holds, the role verified with its own trust list.
type DirectoryResult struct {
	Clinic     protocol.AccountID `json:"clinic"`
	ClinicName string             `json:"clinic_name,omitempty"`
	Account    protocol.AccountID `json:"account"`
	Name       string             `json:"name"`
	Role       protocol.Role      `json:"role"`
	Department string             `json:"department,omitempty"`
	Emergency  bool               `json:"emergency,omitempty"`
	Until      time.Time          `json:"until,omitzero"`
	// Proof is this node's verdict on the role; Contact whether the
	// account is already one of this repo's contacts.
	Proof   RoleProof `json:"proof"`
	Contact bool      `json:"contact"`
}

// ApplyDirectory verifies and applies a directory answer's blocks (the
// entries' first blocks, clinic and authority chains: applyProof) and
// judges each entry: its name comes from the chain now held, its role
// from verifyRole with this repo's trust list. An entry whose account's
// chain did not arrive is left out. It returns the results, in the
// answer's order, and the problems met applying the blocks.
func (r *Repo) ApplyDirectory(ctx context.Context, ans *DirectoryAnswer) ([]DirectoryResult, []string, error) {
	subjects := map[protocol.AccountID]bool{}
	for _, e := range ans.Entries {
		subjects[protocol.AccountIDFromKey(e.Account)] = true
	}
	_, problems, err := r.applyProof(ctx, subjects, ans.Blocks)
	if err != nil {
		return nil, nil, err
	}
	out := make([]DirectoryResult, 0, len(ans.Entries))
	for _, e := range ans.Entries {
		id, clinic := protocol.AccountIDFromKey(e.Account), protocol.AccountIDFromKey(e.Clinic)
		st, err := r.state(ctx, id)
		if errors.Is(err, ErrUnknownAccount) {
			problems = append(problems, "no first block came for "+string(id))
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		proof, err := r.VerifiedRole(ctx, id, protocol.RoleClinician, r.now())
		if err != nil {
			return nil, nil, err
		}
		res := DirectoryResult{Clinic: clinic, Account: id, Name: st.Name, Role: st.Role, Department: e.Department, Emergency: e.Emergency, Proof: proof}
		if proof.Verified {
			res.Department, res.Emergency, res.Until = proof.Department, proof.Emergency, proof.Until
		}
		if cs, err := r.state(ctx, clinic); err == nil {
			res.ClinicName = cs.Name
		}
		if res.Contact, err = r.IsContact(ctx, id); err != nil {
			return nil, nil, err
		}
		out = append(out, res)
	}
	return out, problems, nil
}
