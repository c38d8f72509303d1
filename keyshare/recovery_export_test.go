package keyshare

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// exportWorld is Pat with recovery contacts Cam (whose repo exports; his
// node declared after his first block) and Dee (her node declared in her
// first block, a second one later), and Mal, whom Cam's repo knows but
// Pat's setup does not name.
type exportWorld struct {
	pat, cam, dee, mal              *party
	camNode, deeNode, dee2, malNode string
}

func newExportWorld(t *testing.T) *exportWorld {
	t.Helper()
	ctx := context.Background()
	w := &exportWorld{camNode: newPeerID(t), deeNode: newPeerID(t), dee2: newPeerID(t), malNode: newPeerID(t)}
	w.pat = newParty(t, "Pat", protocol.RolePatient)
	w.cam = newParty(t, "Cam", protocol.RolePatient)
	w.dee = withNode(t, "Dee", w.deeNode)
	w.mal = withNode(t, "Mal", w.malNode)
	if _, err := w.cam.repo.SetDevice(ctx, w.cam.keys, w.camNode, "", false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.dee.repo.SetDevice(ctx, w.dee.keys, w.dee2, "", false); err != nil {
		t.Fatal(err)
	}
	send(t, w.cam, w.pat)
	send(t, w.dee, w.pat)
	if _, err := w.pat.repo.SetupRecovery(ctx, w.pat.keys, []protocol.AccountID{w.cam.keys.ID, w.dee.keys.ID}, 1); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*party{w.pat, w.dee, w.mal} {
		send(t, p, w.cam)
	}
	for p, a := range map[string]string{w.deeNode: "/ip4/192.0.2.2/tcp/4001", w.malNode: "/ip4/192.0.2.6/tcp/4001"} {
		if d, _, err := w.cam.repo.KeepPeerAddrs(ctx, p, []string{a}); err != nil || !d.Allow {
			t.Fatalf("Cam keeps %s: %+v %v", p, d, err)
		}
	}
	return w
}

func withNode(t *testing.T, name, node string) *party {
	t.Helper()
	ctx := context.Background()
	p := newParty(t, name+"-repo", protocol.RolePatient)
	k, err := p.repo.CreateAccount(ctx, name, protocol.RolePatient, nil, DeviceInfo{PeerID: node})
	if err != nil {
		t.Fatal(err)
	}
	return &party{repo: p.repo, keys: k}
}

func (w *exportWorld) export(t *testing.T) ([]byte, RecoveryExported) {
	t.Helper()
	var buf bytes.Buffer
	got, err := w.cam.repo.ExportRecovery(context.Background(), &buf, w.pat.keys.ID, KeptAddrs{Peer: w.camNode, Addrs: []string{"/ip4/192.0.2.1/tcp/4001"}})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), got
}

// A recovery export gives a new device Pat's chain, Cam's chain whole,
// Dee's first block, and where Cam's repo reached their nodes: the new
// repo keeps those addresses (the nodes the chains it now holds declare),
// and nothing of Mal's.
func TestRecoveryExportHandsOverContacts(t *testing.T) {
	ctx := context.Background()
	w := newExportWorld(t)
	car, got := w.export(t)
	// In the setup's order (which need not be the order given).
	if len(got.Contacts) != 2 || !slices.Contains(got.Contacts, w.cam.keys.ID) || !slices.Contains(got.Contacts, w.dee.keys.ID) ||
		len(got.Peers) != 2 || !slices.Contains(got.Peers, w.camNode) || !slices.Contains(got.Peers, w.deeNode) {
		t.Fatalf("export holds %+v", got)
	}
	fresh := openTempRepo(t)
	if _, err := fresh.ImportCAR(ctx, bytes.NewReader(car)); err != nil {
		t.Fatal(err)
	}
	if a, _ := fresh.PeerAddrs(ctx, w.camNode); !slices.Equal(a, []string{"/ip4/192.0.2.1/tcp/4001"}) {
		t.Fatalf("Cam's node kept at %v", a)
	}
	if a, _ := fresh.PeerAddrs(ctx, w.deeNode); !slices.Equal(a, []string{"/ip4/192.0.2.2/tcp/4001"}) {
		t.Fatalf("Dee's node kept at %v", a)
	}
	if a, _ := fresh.PeerAddrs(ctx, w.malNode); a != nil {
		t.Fatalf("Mal's node, whom Pat's setup does not name, kept at %v", a)
	}
	if _, err := fresh.Account(ctx, w.mal.keys.ID); err == nil {
		t.Fatal("the export handed over Mal's chain")
	}
	dee, err := fresh.Account(ctx, w.dee.keys.ID)
	if err != nil || dee.Seq != 0 {
		t.Fatalf("Dee's chain on the new repo: %+v %v (want her first block only)", dee, err)
	}
	cam, err := fresh.Account(ctx, w.cam.keys.ID)
	if err != nil || cam.Seq == 0 {
		t.Fatalf("Cam's chain on the new repo: %+v %v (want it whole)", cam, err)
	}
	devs, _ := fresh.DevicesOf(ctx, w.cam.keys.ID)
	if !slices.Contains(devs, w.camNode) {
		t.Fatalf("Cam's node, declared after his first block, not known: %v", devs)
	}
}

// A hint never replaces an address the book keeps, and a hint for a node
// no known chain declares is left, even when the file's chains are good.
func TestRecoveryExportHintsCannotMoveOrAddNodes(t *testing.T) {
	ctx := context.Background()
	w := newExportWorld(t)
	car, _ := w.export(t)
	r := openTempRepo(t)
	send(t, w.dee, &party{repo: r})
	if _, _, err := r.KeepPeerAddrs(ctx, w.deeNode, []string{"/ip4/198.51.100.2/tcp/4001"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ImportCAR(ctx, bytes.NewReader(car)); err != nil {
		t.Fatal(err)
	}
	if a, _ := r.PeerAddrs(ctx, w.deeNode); !slices.Equal(a, []string{"/ip4/198.51.100.2/tcp/4001"}) {
		t.Fatalf("a hint moved Dee's kept node to %v", a)
	}

	// A forged file: Pat's chain with a hint for Mal's node, whose chain
	// it does not carry.
	hint, err := w.cam.repo.putHints(ctx, addrHints{Peers: []KeptAddrs{{Peer: w.malNode, Addrs: []string{"/ip4/203.0.113.6/tcp/1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := w.cam.repo.state(ctx, w.pat.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	var forged bytes.Buffer
	if err := w.cam.repo.st.ExportCAR(ctx, &forged, []cid.Cid{st.head(), hint}); err != nil {
		t.Fatal(err)
	}
	other := openTempRepo(t)
	if _, err := other.ImportCAR(ctx, &forged); err != nil {
		t.Fatal(err)
	}
	if a, _ := other.PeerAddrs(ctx, w.malNode); a != nil {
		t.Fatalf("a hint for an undeclared node was kept: %v", a)
	}
}

// Hostile files: a raw root that is no hints block, or two of them, fail
// the whole import with a line saying so, and leave the repo as it was.
func TestRecoveryExportHostileHints(t *testing.T) {
	ctx := context.Background()
	w := newExportWorld(t)
	st, err := w.cam.repo.state(ctx, w.pat.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	h1, err := w.cam.repo.putHints(ctx, addrHints{Peers: []KeptAddrs{{Peer: w.deeNode, Addrs: []string{"/ip4/192.0.2.2/tcp/1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := w.cam.repo.putHints(ctx, addrHints{Peers: []KeptAddrs{{Peer: w.camNode, Addrs: []string{"/ip4/192.0.2.1/tcp/1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		roots []cid.Cid
		want  string
	}{
		"two hint roots": {[]cid.Cid{st.head(), h1, h2}, "more than one raw root"},
		"hints only":     {[]cid.Cid{h1}, "no chain roots"},
	} {
		var car bytes.Buffer
		if err := w.cam.repo.st.ExportCAR(ctx, &car, tc.roots); err != nil {
			t.Fatal(err)
		}
		r := openTempRepo(t)
		if _, err := r.ImportCAR(ctx, &car); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("%s: import error %v, want %q", name, err, tc.want)
		}
		if all, _ := r.Accounts(ctx); len(all) != 0 {
			t.Fatalf("%s: a refused import left %d accounts", name, len(all))
		}
	}
	if _, _, err := splitHintRoots([]cid.Cid{h1}, func(cid.Cid) ([]byte, error) { return []byte("{not json"), nil }); err == nil || !strings.Contains(err.Error(), "no address hints block") {
		t.Fatalf("a raw root of junk: %v", err)
	}
}

// Only an account whose live setup names a local account is exported:
// not Mal (no setup), not Pat from a repo none of whose accounts she named.
func TestRecoveryExportOnlyForAContactsAccount(t *testing.T) {
	w := newExportWorld(t)
	var buf bytes.Buffer
	if _, err := w.cam.repo.ExportRecovery(context.Background(), &buf, w.mal.keys.ID, KeptAddrs{}); err == nil || !strings.Contains(err.Error(), "names no account of this repo") {
		t.Fatalf("export of Mal: %v", err)
	}
	send(t, w.pat, w.mal)
	if _, err := w.mal.repo.ExportRecovery(context.Background(), &buf, w.pat.keys.ID, KeptAddrs{}); err == nil || buf.Len() != 0 {
		t.Fatalf("a stranger's repo exported Pat: %v (%d bytes)", err, buf.Len())
	}
}
