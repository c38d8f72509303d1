package ops

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Pairing codes: what is accepted, and that every refusal is one line
// matching ErrInvalid.
func TestParsePairCode(t *testing.T) {
	node := "/ip4/192.0.2.7/tcp/4101/p2p/12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"
	addr, secret, err := ParsePairCode("  " + node + " 7kq2-m9xf-3tra\n")
	if err != nil || secret != "7KQ2M9XF3TRA" || addr.ID.String() != "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu" || len(addr.Addrs) != 1 {
		t.Fatalf("pair code: %+v %q %v", addr, secret, err)
	}
	for _, bad := range []string{"", node, "7KQ2-M9XF-3TRA", node + " 7KQ2", node + " 7KQ2-M9XF-3TRU", "/ip4/192.0.2.7/tcp/4101 7KQ2-M9XF-3TRA",
		"/not/an/address 7KQ2-M9XF-3TRA", node + " " + strings.Repeat("A", 3000)} {
		if _, _, err := ParsePairCode(bad); !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
			t.Errorf("pair code %.40q: %v", bad, err)
		}
	}
	if _, err := PairJoin(context.Background(), nil, JoinRequest{Code: node + " 7KQ2-M9XF-3TRA"}); !errors.Is(err, ErrNoNode) {
		t.Errorf("join without a node: %v", err)
	}
	if _, err := PairStart(nil, nil, nil); !errors.Is(err, ErrNoNode) {
		t.Errorf("pair without a node: %v", err)
	}
}

func peerID(t *testing.T) string {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// RemoveDevice rotates both keys for another device; it only withdraws
// this node itself, or with KeepKey; an undeclared device is ErrNotFound.
func TestRemoveDevice(t *testing.T) {
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	self, phone, tablet := peerID(t), peerID(t), peerID(t)
	k, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, nil,
		keyshare.DeviceInfo{PeerID: self}, keyshare.DeviceInfo{PeerID: phone}, keyshare.DeviceInfo{PeerID: tablet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveDevice(ctx, repo, nil, k, self, RemoveDeviceRequest{PeerID: peerID(t)}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("undeclared device: %v", err)
	}
	if _, err := RemoveDevice(ctx, repo, nil, k, self, RemoveDeviceRequest{PeerID: "junk"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad peer ID: %v", err)
	}
	out, err := RemoveDevice(ctx, repo, nil, k, self, RemoveDeviceRequest{PeerID: tablet, KeepKey: true})
	if err != nil || out.Rotated != "" || out.Note != NoteKept {
		t.Fatalf("keep key: %+v %v", out, err)
	}
	before := k.Age.Recipient().String()
	out, err = RemoveDevice(ctx, repo, nil, k, self, RemoveDeviceRequest{PeerID: phone})
	if err != nil || !out.Signing || out.Recipient == before || out.Retired != 1 || out.Block != out.Rotated {
		t.Fatalf("remove: %+v %v", out, err)
	}
	info, _ := repo.Account(ctx, k.ID)
	if len(info.Devices) != 1 || info.Devices[0].PeerID != self || info.Recipient != out.Recipient {
		t.Fatalf("after removal: %+v", info)
	}
	k2, err := repo.Unlock(ctx, k.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err = RemoveDevice(ctx, repo, nil, k2, self, RemoveDeviceRequest{PeerID: self})
	if err != nil || out.Rotated != "" || out.Note != NoteSelf {
		t.Fatalf("remove this node: %+v %v", out, err)
	}
}

// Encrypted keys without the passphrase rotate the age key only, and say
// so; with a wrong passphrase nothing changes.
func TestRemoveDeviceEncrypted(t *testing.T) {
	ctx := t.Context()
	repo, err := keyshare.Open(ctx, t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	phone, tablet := peerID(t), peerID(t)
	k, err := repo.CreateAccount(ctx, "Pat", protocol.RolePatient, []byte("pw"), keyshare.DeviceInfo{PeerID: phone}, keyshare.DeviceInfo{PeerID: tablet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveDevice(ctx, repo, nil, k, "", RemoveDeviceRequest{PeerID: phone, Passphrase: "wrong"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if info, _ := repo.Account(ctx, k.ID); len(info.Devices) != 2 {
		t.Fatalf("a wrong passphrase changed the devices: %+v", info.Devices)
	}
	out, err := RemoveDevice(ctx, repo, nil, k, "", RemoveDeviceRequest{PeerID: phone})
	if err != nil || out.Signing || out.Rotated == "" || out.Note != NoteNoPassphrase {
		t.Fatalf("without passphrase: %+v %v", out, err)
	}
}
