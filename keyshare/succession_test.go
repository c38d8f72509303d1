package keyshare

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

func noteAs(t *testing.T, p *party, k *Keys, text string) cid.Cid {
	t.Helper()
	c, err := p.repo.AddRecord(context.Background(), k, NewRecord{Title: text, Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader(text)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A planned succession: the old key names the new one, the ID stays, old
// and new records stay readable, others verify the new blocks, and the old
// key can sign nothing after it.
func TestSucceedContinuesChain(t *testing.T) {
	ctx := context.Background()
	alice := newParty(t, "Alice", protocol.RolePatient)
	bob := newParty(t, "Bob", protocol.RoleClinician)
	send(t, bob, alice)
	before := noteAs(t, alice, alice.keys, "before")
	if _, err := alice.repo.Grant(ctx, alice.keys, []cid.Cid{before}, bob.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	send(t, alice, bob)

	old := alice.keys
	nk, err := alice.repo.Succeed(ctx, old, nil, SuccessionOptions{RotateAge: true})
	if err != nil {
		t.Fatal(err)
	}
	if nk.ID != old.ID || bytes.Equal(nk.SigningKey(), old.SigningKey()) || !bytes.Equal(nk.Public(), old.Public()) {
		t.Fatalf("succession changed the ID or kept the key")
	}
	after := noteAs(t, alice, nk, "after")
	if _, err := alice.repo.Grant(ctx, nk, []cid.Cid{after}, bob.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// The old key is retired here.
	if _, err := alice.repo.AddRecord(ctx, old, NewRecord{Title: "x", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")}); !errors.Is(err, ErrKeyRetired) {
		t.Fatalf("retired key wrote: %v", err)
	}
	// Both records open with the new keys (the old age identity is kept).
	for _, c := range []cid.Cid{before, after} {
		if _, _, err := readAll(t, &party{repo: alice.repo, keys: nk}, c); err != nil {
			t.Fatalf("read %s after succession: %v", c, err)
		}
	}
	// Unlocking reads the new key file.
	k2, err := alice.repo.Unlock(ctx, old.ID, nil)
	if err != nil || !bytes.Equal(k2.SigningKey(), nk.SigningKey()) || len(k2.Old) != 1 {
		t.Fatalf("unlock after succession: %v", err)
	}
	if _, err := os.Stat(alice.repo.keyPath(old.ID) + ".next"); !os.IsNotExist(err) {
		t.Fatalf("next key file left: %v", err)
	}
	info, err := alice.repo.Signing(ctx, old.ID, old)
	if err != nil || info.ThisDevice || info.Since == 0 || info.Retired != 1 {
		t.Fatalf("signing info for the old key: %+v %v", info, err)
	}

	// Bob verifies the new blocks and reads the new record.
	send(t, alice, bob)
	if _, data, err := readAll(t, bob, after); err != nil || string(data) != "after" {
		t.Fatalf("bob reads the record signed by the successor: %v", err)
	}
	mustVerify(t, alice)
	mustVerify(t, bob)

	// A second succession retires the first successor too.
	nk2, err := alice.repo.Succeed(ctx, nk, nil, SuccessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	noteAs(t, alice, nk2, "third")
	send(t, alice, bob)
	mustVerify(t, bob)
	info, _ = bob.repo.Signing(ctx, old.ID, nil)
	if info.Retired != 2 {
		t.Fatalf("retired keys: %+v", info)
	}
}

// The old (stolen) key signing after the succession: the verifier refuses
// the block, whether it follows the succession or competes with it.
func TestRetiredKeySigningRefused(t *testing.T) {
	ctx := context.Background()
	alice := newParty(t, "Alice", protocol.RolePatient)
	bob := newParty(t, "Bob", protocol.RoleClinician)
	thief, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Close()
	send(t, alice, bob)
	send(t, alice, &party{repo: thief})

	old := alice.keys
	if _, err := alice.repo.Succeed(ctx, old, nil, SuccessionOptions{}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := alice.repo.ExportCAR(ctx, &buf, old.ID); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	if _, err := thief.ImportCAR(ctx, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.repo.ImportCAR(ctx, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	head := bob.repo.mustHead(t, old.ID)

	// After the succession: the thief's repo refuses to sign with it, and
	// a block signed by force is refused by every verifier.
	if _, err := thief.AddRecord(ctx, old, NewRecord{Title: "x", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("x")}); !errors.Is(err, ErrKeyRetired) {
		t.Fatalf("thief's repo signed: %v", err)
	}
	st, err := thief.state(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	link := protocol.NewLink(st.head())
	forged := &protocol.Block{Seq: st.Seq + 1, Prev: &link, Time: st.Time, Entries: []protocol.Entry{protocol.NewEntry(&protocol.Hide{Records: []protocol.Link{link}})}}
	rawB, c, err := forged.Sign(old.Sign)
	if err != nil {
		t.Fatal(err)
	}
	err = bob.repo.commitForTest(ctx, c, forged, rawB)
	var se *SignerError
	if !errors.As(err, &se) || se.Decision.Rule != RuleSignerRetired {
		t.Fatalf("block by the retired key after the succession: %v", err)
	}
	if bob.repo.mustHead(t, old.ID) != head {
		t.Fatal("refused block moved the head")
	}
}

// commitForTest verifies and applies one block as an import would.
func (r *Repo) commitForTest(ctx context.Context, c cid.Cid, b *protocol.Block, raw []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.commit(ctx, []verifiedBlock{{cid: c, block: b, raw: raw}})
}

// Old verifiers fail closed: a version-1 verifier rejects a block signed
// by a successor (its version), and the succession entry is critical.
func TestSuccessionFailsClosed(t *testing.T) {
	ctx := context.Background()
	alice := newParty(t, "Alice", protocol.RolePatient)
	nk, err := alice.repo.Succeed(ctx, alice.keys, nil, SuccessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	noteAs(t, alice, nk, "n")
	st, _ := alice.repo.state(ctx, nk.ID)
	b, err := alice.repo.readBlock(ctx, st.head())
	if err != nil {
		t.Fatal(err)
	}
	if b.Version != protocol.BlockVersionSuccessor || !bytes.Equal(b.Signer, nk.SigningKey()) {
		t.Fatalf("block after succession: version %d", b.Version)
	}
	sb, err := alice.repo.readBlock(ctx, b.Prev.Cid)
	if err != nil {
		t.Fatal(err)
	}
	if sb.Succession() == nil || !sb.Entries[0].Critical || sb.Version != protocol.BlockVersion {
		t.Fatal("succession entry not critical in a version-1 block")
	}
}
