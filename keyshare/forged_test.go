package keyshare

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// forgedCAR stores a hand-made block on top of alice's chain in her repo's
// blockstore (not in her chain state) and exports the CAR rooted at it.
func forgedCAR(t *testing.T, alice *party, b *protocol.Block, signer ed25519.PrivateKey) []byte {
	t.Helper()
	ctx := context.Background()
	raw, c, err := b.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := blocks.NewBlockWithCid(raw, c)
	if err := alice.repo.Store().Blockstore().Put(ctx, blk); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := alice.repo.Store().ExportCAR(ctx, &buf, []cid.Cid{c}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportRejectsForgedChains(t *testing.T) {
	ctx := context.Background()
	alice := newParty(t, "Alice", protocol.RolePatient)
	if _, err := alice.repo.AddRecord(ctx, alice.keys, NewRecord{Title: "a", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	head := alice.repo.mustHead(t, alice.keys.ID)
	genesis, _, _ := alice.repo.blockAt(ctx, alice.keys.ID, 0)
	hb, err := alice.repo.readBlock(ctx, head)
	if err != nil {
		t.Fatal(err)
	}
	_, mallory, _ := ed25519.GenerateKey(nil)
	hide := []protocol.Entry{protocol.NewEntry(&protocol.Hide{Records: []protocol.Link{protocol.NewLink(genesis)}})}

	headLink, genesisLink := protocol.NewLink(head), protocol.NewLink(genesis)
	cases := []struct {
		name   string
		block  *protocol.Block
		signer ed25519.PrivateKey
		want   string
	}{
		{"re-signed by another key", &protocol.Block{Seq: 2, Prev: &headLink, Time: hb.Time, Entries: hide}, mallory, "author differs"},
		{"sequence gap", &protocol.Block{Seq: 3, Prev: &headLink, Time: hb.Time, Entries: hide}, alice.keys.Sign, "sequence gap"},
		{"prev skips a block", &protocol.Block{Seq: 2, Prev: &genesisLink, Time: hb.Time, Entries: hide}, alice.keys.Sign, "sequence gap"},
		{"time goes backwards", &protocol.Block{Seq: 2, Prev: &headLink, Time: hb.Time - 1, Entries: hide}, alice.keys.Sign, "time goes backwards"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			car := forgedCAR(t, alice, tc.block, tc.signer)
			bob := newParty(t, "Bob", protocol.RoleClinician)
			before, _ := bob.repo.Accounts(ctx)
			_, err := bob.repo.ImportCAR(ctx, bytes.NewReader(car))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("import: %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			after, _ := bob.repo.Accounts(ctx)
			if len(after) != len(before) {
				t.Fatal("rejected import added accounts")
			}
			if has, _ := bob.repo.Store().Blockstore().Has(ctx, head); has {
				t.Fatal("rejected import left blocks behind")
			}
		})
	}
}
