package exchange

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/internal/stocktools"
	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// TestStockKuboReplica: a stock IPFS node (Kubo) the patient declared as
// a replica fetches and pins a record from the patient's node over plain
// bitswap, and the stock age tool decrypts what it holds with the record's
// exported key. A stock node that is not declared gets nothing.
func TestStockKuboReplica(t *testing.T) {
	ctx := t.Context()
	pat := newNode(t, "Pat", protocol.RolePatient)
	content := stocktools.PseudoRandomBytes("kubo replica", 2<<20+11)
	rec, err := pat.repo.AddRecord(ctx, pat.keys, keyshare.NewRecord{Title: "scan", Kind: protocol.KindFile,
		MediaType: "application/octet-stream", Body: bytes.NewReader(content)})
	if err != nil {
		t.Fatal(err)
	}

	backup := stocktools.StartKubo(t, stocktools.KuboOptions{Daemon: true})
	stranger := stocktools.StartKubo(t, stocktools.KuboOptions{Daemon: true})
	if _, err := pat.repo.SetReplica(ctx, pat.keys, backup.PeerID(), "home backup", false); err != nil {
		t.Fatal(err)
	}
	addr := pat.host.Addrs()[0].String() + "/p2p/" + pat.host.ID().String()
	for _, k := range []*stocktools.Kubo{backup, stranger} {
		if err := k.Connect(addr); err != nil {
			t.Fatalf("kubo connect: %v", err)
		}
	}

	// The declared replica pins the record over bitswap.
	if out, err := backup.Run("--timeout=60s", "pin", "add", "--progress=false", rec.String()); err != nil {
		t.Fatalf("replica pin add: %v: %s", err, out)
	}
	want := catStore(t, pat, rec)
	if got := backup.Cat(t, rec.String()); !bytes.Equal(got, want) {
		t.Fatal("the replica holds other bytes than the record's ciphertext")
	}
	key, _, err := pat.repo.RecordKey(ctx, pat.keys, rec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, ctFile := filepath.Join(dir, "key"), filepath.Join(dir, "ct")
	os.WriteFile(keyFile, []byte(key.String()+"\n"), 0o600)
	os.WriteFile(ctFile, backup.Cat(t, rec.String()), 0o600)
	plain, err := exec.Command(stocktools.Age(t), "-d", "-i", keyFile, ctFile).Output()
	if err != nil || !bytes.Equal(plain, content) {
		t.Fatalf("stock age on the replica's copy: %v", err)
	}

	// The undeclared stock node gets nothing and holds nothing.
	if out, err := stranger.Run("--timeout=5s", "block", "get", rec.String()); err == nil {
		t.Fatalf("undeclared stock node got the record's root block (%d bytes)", len(out))
	}
	if out, err := stranger.Run("block", "stat", "--offline", rec.String()); err == nil {
		t.Fatalf("undeclared stock node holds the root block: %s", out)
	}
	if pat.ex.Stats().Refused == 0 {
		t.Fatal("the patient's node never refused a want: the stranger's request did not arrive")
	}
}

// catStore returns the ciphertext of record c from n's store.
func catStore(t *testing.T, n *testNode, c cid.Cid) []byte {
	t.Helper()
	r, err := n.repo.Store().Cat(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
