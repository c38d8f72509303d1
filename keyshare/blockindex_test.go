package keyshare

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// recordBlocks lists every block of record root's DAG in p's store.
func recordBlocks(t *testing.T, p *party, root cid.Cid) []cid.Cid {
	t.Helper()
	var out []cid.Cid
	if err := p.repo.Store().Walk(context.Background(), root, func(b blocks.Block) error {
		out = append(out, b.Cid())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMayServe(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	clinic := newParty(t, "Clinic", protocol.RoleClinic)
	stranger := newParty(t, "Stranger", protocol.RolePatient)
	clinicNode, strangerNode, patNode, nobody := newPeerID(t), newPeerID(t), newPeerID(t), newPeerID(t)
	if _, err := clinic.repo.SetDevice(ctx, clinic.keys, clinicNode, "front desk", false); err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.repo.SetDevice(ctx, stranger.keys, strangerNode, "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := pat.repo.SetDevice(ctx, pat.keys, patNode, "", false); err != nil {
		t.Fatal(err)
	}
	send(t, clinic, pat)
	send(t, stranger, pat)

	// A record big enough to have inner nodes and several leaves.
	body := strings.Repeat("blood pressure 120/80\n", 200000)
	rec, err := pat.repo.AddRecord(ctx, pat.keys, NewRecord{Title: "bp", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	blks := recordBlocks(t, pat, rec)
	if len(blks) < 3 {
		t.Fatalf("record has %d blocks; want a multi-block DAG", len(blks))
	}
	if _, err := pat.repo.Grant(ctx, pat.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}

	may := func(peerID string, c cid.Cid) bool {
		t.Helper()
		ok, reason, err := mayServe(ctx, pat.repo, peerID, c)
		if err != nil {
			t.Fatal(err)
		}
		if reason == "" {
			t.Fatal("no reason given")
		}
		return ok
	}
	for _, c := range blks {
		o, err := pat.repo.Owner(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(o.Records) != 1 || o.Records[0] != rec || o.Chain != "" {
			t.Fatalf("owner of %s: %+v", c, o)
		}
		if !may(clinicNode, c) || !may(patNode, c) {
			t.Fatalf("block %s refused to the grantee or the subject", c)
		}
		if may(strangerNode, c) || may(nobody, c) {
			t.Fatalf("block %s served to a stranger", c)
		}
		// Same bytes under another codec: the store would hand them out.
		if alias := cid.NewCidV1(cid.Raw, c.Hash()); may(strangerNode, alias) || !may(clinicNode, alias) {
			t.Fatalf("alias %s judged differently from %s", alias, c)
		}
	}

	head := pat.repo.mustHead(t, pat.keys.ID)
	o, err := pat.repo.Owner(ctx, head)
	if err != nil || o.Chain != pat.keys.ID || len(o.Records) != 0 {
		t.Fatalf("owner of the head: %+v, %v", o, err)
	}
	genesis, _, _ := pat.repo.blockAt(ctx, pat.keys.ID, 0)
	for _, c := range []cid.Cid{head, genesis} {
		if !may(clinicNode, c) || !may(patNode, c) {
			t.Fatalf("chain block %s refused to the grantee or the owner", c)
		}
		if may(strangerNode, c) || may(nobody, c) {
			t.Fatalf("chain block %s served to a stranger", c)
		}
	}
	// Chain blocks applied before the index existed are indexed from the
	// sequence index when the repo is opened, and recognised under any
	// CID of the same bytes.
	if err := pat.repo.ds.Delete(ctx, keyChainBlock(head)); err != nil {
		t.Fatal(err)
	}
	if err := pat.repo.ds.Delete(ctx, keyChainIndexDone); err != nil {
		t.Fatal(err)
	}
	pat.repo.cache.invalidate() // the test wrote behind the repo's back
	if o, err := pat.repo.Owner(ctx, head); err != nil || o.Chain != "" {
		t.Fatalf("owner without the index entry: %+v, %v (the index alone decides)", o, err)
	}
	if err := pat.repo.completeChainBlockIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []cid.Cid{head, cid.NewCidV1(cid.Raw, head.Hash())} {
		if o, err := pat.repo.Owner(ctx, c); err != nil || o.Chain != pat.keys.ID {
			t.Fatalf("owner of %s without the index: %+v, %v", c, o, err)
		}
	}
	// The stranger's own chain is served to the stranger's node.
	if sh := pat.repo.mustHead(t, stranger.keys.ID); !may(strangerNode, sh) || may(clinicNode, sh) {
		t.Fatal("stranger's chain judged wrongly")
	}
	// Unknown blocks: nothing.
	unknown, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: 0x12, MhLength: -1}.Sum([]byte("nothing"))
	if err != nil {
		t.Fatal(err)
	}
	if may(clinicNode, unknown) || may(patNode, unknown) {
		t.Fatal("unknown block served")
	}

	// Revocation applies to the next question.
	if _, err := pat.repo.Revoke(ctx, pat.keys, []cid.Cid{rec}, clinic.keys.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range blks {
		if may(clinicNode, c) {
			t.Fatalf("block %s served after revocation", c)
		}
		if !may(patNode, c) {
			t.Fatalf("block %s refused to the subject", c)
		}
	}

	// The index survives a reopen, and an import indexes the records it
	// brings: the clinic, granted again, gets the record by CAR and would
	// serve it to the patient's node.
	if _, err := pat.repo.Grant(ctx, pat.keys, []cid.Cid{rec}, clinic.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	var car bytes.Buffer
	if _, err := pat.repo.ExportCAR(ctx, &car, pat.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := clinic.repo.ImportCAR(ctx, &car); err != nil {
		t.Fatal(err)
	}
	send(t, stranger, clinic)
	dir := clinic.repo.Dir()
	if err := clinic.repo.Close(); err != nil {
		t.Fatal(err)
	}
	clinic.repo, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range blks {
		ok, _, err := mayServe(ctx, clinic.repo, patNode, c)
		if err != nil || !ok {
			t.Fatalf("clinic refuses block %s to the patient: %v", c, err)
		}
		if ok, _, _ := mayServe(ctx, clinic.repo, strangerNode, c); ok {
			t.Fatalf("clinic serves block %s to the stranger", c)
		}
	}
}

// BenchmarkMayServe measures one access decision for a record block, as
// the exchange makes for every want.
func BenchmarkMayServe(b *testing.B) {
	ctx := context.Background()
	r, err := Open(ctx, b.TempDir(), Options{Create: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	pat, err := r.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		b.Fatal(err)
	}
	node := "12D3KooWGzF4Bc5YX5Yk5b6cGq3rQJ7Zm1d8qJcKXh6HbS4Y2e2V"
	if _, err := r.SetDevice(ctx, pat, node, "", false); err != nil {
		b.Skip("peer ID literal not accepted:", err)
	}
	var rec cid.Cid
	for i := range 20 {
		rec, err = r.AddRecord(ctx, pat, NewRecord{Title: "n", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader(strings.Repeat("x", i+1))})
		if err != nil {
			b.Fatal(err)
		}
	}
	head, err := r.Account(ctx, pat.ID)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		c    cid.Cid
	}{{"record", rec}, {"chain", head.Head}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if ok, _, err := mayServe(ctx, r, node, c.c); err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
	}
}

// Writing a record about someone does not open their chain to the writer
// until they acknowledge it.
func TestChainNotOpenedByUnacknowledgedClaim(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	writer := newParty(t, "Writer", protocol.RoleApp)
	node := newPeerID(t)
	if _, err := writer.repo.SetDevice(ctx, writer.keys, node, "", false); err != nil {
		t.Fatal(err)
	}
	send(t, pat, writer)
	if _, err := writer.repo.AddRecord(ctx, writer.keys, NewRecord{Title: "t", Kind: protocol.KindNote, MediaType: "text/plain", Subject: pat.keys.ID, Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	send(t, writer, pat)
	genesis, _, _ := pat.repo.blockAt(ctx, pat.keys.ID, 0)
	if ok, why, err := mayServe(ctx, pat.repo, node, genesis); err != nil || ok {
		t.Fatalf("unacknowledged writer gets the subject's chain: %v %s %v", ok, why, err)
	}
	if n, err := pat.repo.Acknowledge(ctx, pat.keys); err != nil || n != 1 {
		t.Fatalf("acknowledge: %d %v", n, err)
	}
	if ok, why, err := mayServe(ctx, pat.repo, node, genesis); err != nil || !ok {
		t.Fatalf("acknowledged writer refused the subject's chain: %v %s %v", ok, why, err)
	}
}

// A declared replica gets its account's chain and the blocks of records
// the account owns or wrote, and nothing of anyone else's.
func TestReplicaMayServe(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	other := newParty(t, "Other", protocol.RolePatient)
	send(t, other, pat)
	backup := newPeerID(t)
	own, err := pat.repo.AddRecord(ctx, pat.keys, NewRecord{Title: "t", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("mine")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pat.repo.SetReplica(ctx, pat.keys, backup, "backup", false); err != nil {
		t.Fatal(err)
	}
	head := pat.repo.mustHead(t, pat.keys.ID)
	otherGenesis, _, _ := pat.repo.blockAt(ctx, other.keys.ID, 0)
	for _, tc := range []struct {
		c    cid.Cid
		want bool
	}{{own, true}, {head, true}, {otherGenesis, false}} {
		if ok, why, err := mayServe(ctx, pat.repo, backup, tc.c); err != nil || ok != tc.want {
			t.Fatalf("MayServe(replica, %s) = %v (%s), %v; want %v", tc.c, ok, why, err, tc.want)
		}
	}
	if accts, _ := pat.repo.AccountsOfPeer(ctx, backup); len(accts) != 0 {
		t.Fatal("a replica acts for the account")
	}
	if _, err := pat.repo.SetReplica(ctx, pat.keys, backup, "", true); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := mayServe(ctx, pat.repo, backup, own); ok {
		t.Fatal("a withdrawn replica is still served")
	}
}
