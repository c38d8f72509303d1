package keyshare

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// A throwaway account M2 writes a record about Pat and CCs Mallory: that
// must not open Pat's chain to Mallory's node.
func TestThrowawayAuthorCannotOpenSubjectsChain(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	mal := newParty(t, "Mallory", protocol.RolePatient)
	m2 := newParty(t, "M2", protocol.RolePatient)
	node := newPeerID(t)
	if _, err := mal.repo.SetDevice(ctx, mal.keys, node, "", false); err != nil {
		t.Fatal(err)
	}
	send(t, pat, m2)
	send(t, mal, m2)
	if _, err := m2.repo.AddRecord(ctx, m2.keys, NewRecord{Title: "t", Kind: protocol.KindNote, MediaType: "text/plain", Subject: pat.keys.ID, CC: []protocol.AccountID{mal.keys.ID}, Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	send(t, mal, pat)
	send(t, m2, pat)
	genesis, _, _ := pat.repo.blockAt(ctx, pat.keys.ID, 0)
	ok, why, err := mayServe(ctx, pat.repo, node, genesis)
	if err != nil || ok {
		t.Fatalf("a record written about Pat by a throwaway account opened her chain to the account it CCd: %v (%s) %v", ok, why, err)
	}
}

// Mallory claims Pat's record CID, and a raw-codec alias of it, on her own
// chain: Pat's node must serve her none of the record's blocks, and still
// serve a real grantee.
func TestFalseClaimGetsNoBlocks(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	mal := newParty(t, "Mallory", protocol.RolePatient)
	node := newPeerID(t)
	if _, err := mal.repo.SetDevice(ctx, mal.keys, node, "", false); err != nil {
		t.Fatal(err)
	}
	send(t, pat, mal)
	body := strings.Repeat("blood pressure 120/80\n", 200000)
	rec, err := pat.repo.AddRecord(ctx, pat.keys, NewRecord{Title: "bp", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	blks := recordBlocks(t, pat, rec)
	alias := cid.NewCidV1(cid.Raw, rec.Hash())
	for _, target := range []cid.Cid{rec, alias} {
		f := &recordFacts{}
		getJSON(ctx, pat.repo.ds, keyRecordFacts(rec), f)
		mal.repo.mu.Lock()
		_, err = mal.repo.appendBlock(ctx, mal.keys, []protocol.Entry{protocol.NewEntry(&protocol.Record{
			Record: protocol.NewLink(target), Subject: mal.keys.Public(), Meta: f.Claims[0].Meta,
			Keys: []protocol.WrappedKey{{To: mal.keys.Public(), Key: []byte("junk")}},
		})})
		mal.repo.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	{
		var car bytes.Buffer
		mst, _ := mal.repo.state(ctx, mal.keys.ID)
		if err := exportChainOnly(ctx, mal.repo, &car, mst.head()); err != nil {
			t.Fatal(err)
		}
		if _, err := pat.repo.ImportCAR(ctx, &car); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range blks {
		if ok, why, err := mayServe(ctx, pat.repo, node, c); err != nil || ok {
			t.Fatalf("block %s of Pat's record served to Mallory: %v (%s) %v", c, ok, why, err)
		}
	}
	if as, _ := pat.repo.accessAll(ctx, rec); len(as) != 2 {
		t.Fatalf("the contest on the record is not kept: %d claims", len(as))
	}

	// A real grantee of Pat's is still served every block.
	doc := newParty(t, "Doc", protocol.RoleClinician)
	docNode := newPeerID(t)
	if _, err := doc.repo.SetDevice(ctx, doc.keys, docNode, "", false); err != nil {
		t.Fatal(err)
	}
	send(t, doc, pat)
	if _, err := pat.repo.Grant(ctx, pat.keys, []cid.Cid{rec}, doc.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range blks {
		if ok, why, err := mayServe(ctx, pat.repo, docNode, c); err != nil || !ok {
			t.Fatalf("block %s refused to the real grantee: %v (%s) %v", c, ok, why, err)
		}
	}
}
