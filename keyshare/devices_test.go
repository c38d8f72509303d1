package keyshare

import (
	"context"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/protocol"
)

func newPeerID(t *testing.T) string {
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

func TestDevices(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	clinic := newParty(t, "Clinic", protocol.RoleClinic)
	laptop, phone := newPeerID(t), newPeerID(t)

	if _, err := pat.repo.SetDevice(ctx, pat.keys, laptop, "laptop", false); err != nil {
		t.Fatal(err)
	}
	if _, err := pat.repo.SetDevice(ctx, pat.keys, phone, "phone", false); err != nil {
		t.Fatal(err)
	}
	if _, err := pat.repo.SetDevice(ctx, pat.keys, "not-a-peer-id", "", false); err == nil {
		t.Fatal("bad peer ID accepted")
	}
	if _, err := pat.repo.SetDevice(ctx, pat.keys, newPeerID(t), "", true); err == nil {
		t.Fatal("withdrawing an undeclared device accepted")
	}
	if _, err := pat.repo.SetDevice(ctx, pat.keys, laptop, "", true); err != nil {
		t.Fatal(err)
	}
	send(t, pat, clinic)

	for _, p := range []*party{pat, clinic} {
		info, err := p.repo.Account(ctx, pat.keys.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(info.Devices) != 1 || info.Devices[0].PeerID != phone || info.Devices[0].Name != "phone" {
			t.Fatalf("devices: %+v", info.Devices)
		}
		if got, _ := p.repo.AccountsOfPeer(ctx, phone); len(got) != 1 || got[0] != pat.keys.ID {
			t.Fatalf("accounts of the phone: %v", got)
		}
		if got, _ := p.repo.AccountsOfPeer(ctx, laptop); len(got) != 0 {
			t.Fatalf("withdrawn laptop still acts for %v", got)
		}
		mustVerify(t, p)
	}
	log, err := clinic.repo.Log(ctx, pat.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range log {
		lines = append(lines, e.Summary)
	}
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "declare device "+phone) || !strings.Contains(all, "withdraw device "+laptop) {
		t.Fatalf("log:\n%s", all)
	}
}
