package chainsync

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// recordEntry finds the record entry for rec on account id's chain as
// repo holds it, walking back from the head.
func recordEntry(t *testing.T, repo *keyshare.Repo, id protocol.AccountID, rec cid.Cid) *protocol.Record {
	t.Helper()
	c, _ := headOf(t, repo, id)
	for c.Defined() {
		blk, err := repo.Store().Blockstore().Get(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		b, err := protocol.DecodeBlock(blk.RawData())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range b.Entries {
			if r, ok := e.Body.(*protocol.Record); ok && r.Record.Cid.Equals(rec) {
				return r
			}
		}
		if b.Prev == nil {
			break
		}
		c = b.Prev.Cid
	}
	t.Fatalf("no record entry for %s on %s's chain", rec, id)
	return nil
}

// forged is one forged record entry: the CID it claims, its subject and
// further readers (all given junk wrapped keys).
type forged struct {
	target  cid.Cid
	subject protocol.AccountID
	readers []protocol.AccountID
}

// forgeClaims has n sign one block of forged record entries, with meta
// copied from the real record, dated like n's previous block (the earliest
// time the chain allows: before the record, since n's chain is older) and
// applied to n's repo, which announces it.
func forgeClaims(t *testing.T, n *testNode, meta []byte, claims ...forged) cid.Cid {
	t.Helper()
	var entries []protocol.Entry
	for _, f := range claims {
		subj, err := f.subject.Key()
		if err != nil {
			t.Fatal(err)
		}
		rec := &protocol.Record{Record: protocol.NewLink(f.target), Subject: subj, Meta: meta}
		seen := map[protocol.AccountID]bool{}
		for _, id := range append([]protocol.AccountID{n.keys.ID, f.subject}, f.readers...) {
			if !seen[id] {
				seen[id] = true
				rec.Keys = append(rec.Keys, protocol.WrappedKey{To: mustKey(t, id), Key: []byte("junk")})
			}
		}
		entries = append(entries, protocol.NewEntry(rec))
	}
	head, seq := headOf(t, n.repo, n.keys.ID)
	blk, err := n.repo.Store().Blockstore().Get(t.Context(), head)
	if err != nil {
		t.Fatal(err)
	}
	prev, err := protocol.DecodeBlock(blk.RawData())
	if err != nil {
		t.Fatal(err)
	}
	link := protocol.NewLink(head)
	b := &protocol.Block{Seq: seq + 1, Prev: &link, Time: prev.Time, Entries: entries}
	raw, c, err := b.Sign(n.keys.Sign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.repo.ApplyChains(t.Context(), []cid.Cid{c}, map[cid.Cid][]byte{c: raw}); err != nil {
		t.Fatal(err)
	}
	return c
}

// blocksOf lists the blocks of the DAG rooted at root in n's store.
func blocksOf(t *testing.T, n *testNode, root cid.Cid) []cid.Cid {
	t.Helper()
	var out []cid.Cid
	if err := n.repo.Store().Walk(t.Context(), root, func(b blocks.Block) error {
		out = append(out, b.Cid())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// The attack of the issue "Access you can trust", over the network: a
// revoked clinician and a contact who was never granted anything each sign
// claims on the patient's record (every variant: naming her as subject,
// naming her as a reader, on an inner block, under another codec), and
// chain sync delivers them to her node by itself. She still reads her record under
// its true title and author, and neither attacker's node receives a single
// block of it, over bitswap or over the DAG stream.
func TestForgedClaimsOverTheNetwork(t *testing.T) {
	patient := newNode(t, "patient", protocol.RolePatient)
	clinic := newNode(t, "clinic", protocol.RoleClinician)
	contact := newNode(t, "contact", protocol.RoleClinician)
	meet(t, patient, clinic)
	meet(t, patient, contact)

	body := make([]byte, 3<<20)
	rand.Read(body)
	rec, err := patient.repo.AddRecord(t.Context(), patient.keys, keyshare.NewRecord{
		Title: "MRI report", Kind: protocol.KindFile, MediaType: "application/octet-stream", Body: bytes.NewReader(body),
	})
	if err != nil {
		t.Fatal(err)
	}
	recBlocks := blocksOf(t, patient, rec)
	if _, err := patient.repo.Grant(t.Context(), patient.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the clinic can read the granted record", func() bool { return readable(t, clinic, rec, body) })
	meta := recordEntry(t, clinic.repo, patient.keys.ID, rec).Meta
	if _, err := patient.repo.Revoke(t.Context(), patient.keys, []cid.Cid{rec}, clinic.keys.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the clinic dropped the revoked record", func() bool {
		has, _ := clinic.repo.Store().Blockstore().Has(t.Context(), rec)
		return !has
	})

	// Both forge every variant: the record with the patient as subject,
	// the record with the forger as subject and the patient and the
	// clinic named as readers, an inner block, and the record's bytes
	// under the raw codec. Chain sync carries the claims to the
	// patient's node by itself.
	heads := map[*testNode]cid.Cid{}
	for _, n := range []*testNode{clinic, contact} {
		heads[n] = forgeClaims(t, n, meta,
			forged{target: rec, subject: patient.keys.ID},
			forged{target: rec, subject: n.keys.ID, readers: []protocol.AccountID{patient.keys.ID, clinic.keys.ID}},
			forged{target: recBlocks[1], subject: patient.keys.ID},
			forged{target: cid.NewCidV1(cid.Raw, rec.Hash()), subject: patient.keys.ID},
		)
	}
	for n, head := range heads {
		eventually(t, "the patient's node holds "+n.name+"'s forged claim", func() bool {
			h, _ := headOf(t, patient.repo, n.keys.ID)
			return h.Equals(head)
		})
	}
	a, err := patient.repo.Access(t.Context(), rec)
	if err != nil || !a.Contested {
		t.Fatalf("the record is not contested on the patient's node: %+v %v", a, err)
	}

	// She reads her record, and lists it, under its true title and author.
	if !readable(t, patient, rec, body) {
		t.Fatal("the patient cannot read her record")
	}
	listed, err := patient.repo.List(t.Context(), patient.keys, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].Title != "MRI report" || listed[0].Author != patient.keys.ID || listed[0].Error != "" {
		t.Fatalf("the patient's listing: %+v", listed)
	}

	// Neither attacker's node gets a block: the DAG stream (which Fetch
	// tries first, then bitswap), then bitswap alone.
	for _, n := range []*testNode{clinic, contact} {
		for _, c := range []cid.Cid{rec, recBlocks[1], cid.NewCidV1(cid.Raw, rec.Hash())} {
			if d, err := patient.repo.MayServe(t.Context(), n.host.ID().String(), c); err != nil || d.Allow {
				t.Fatalf("the patient's node would serve %s to %s: %+v %v", c, n.name, d, err)
			}
		}
		for _, stream := range []bool{true, false} {
			if !stream {
				n.ex.DisableStream()
			}
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			err := n.ex.Fetch(ctx, rec, patient.host.ID())
			cancel()
			if err == nil {
				t.Fatalf("%s fetched the record (stream %v)", n.name, stream)
			}
			for _, c := range recBlocks {
				if has, _ := n.repo.Store().Blockstore().Has(t.Context(), c); has {
					t.Fatalf("%s received block %s of the record (stream %v)", n.name, c, stream)
				}
			}
		}
	}
}
