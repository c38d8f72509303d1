package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// pairOffer is what 'device pair --json' prints.
type pairOffer struct {
	Account string `json:"account"`
	Secret  string `json:"secret"`
	Address string `json:"address"`
	Code    string `json:"code"`
}

// declaresDevice reports whether n's chain of account id declares peer
// as a device.
func declaresDevice(t *testing.T, n *node, id, peer string) bool {
	t.Helper()
	var list struct {
		Devices []struct {
			PeerID string `json:"peer_id"`
		} `json:"devices"`
	}
	n.json(&list, "device", "ls", "--json", "--account", id)
	for _, d := range list.Devices {
		if d.PeerID == peer {
			return true
		}
	}
	return false
}

// TestDevicePairingAndRemoval pairs a phone and a tablet with a laptop
// over real daemons on 127.0.0.1, then removes the lost phone: the new
// devices read and write the account's records, wrong and used codes
// store nothing, and after the removal the laptop and the tablet refuse
// the phone blocks and a record written after it is closed to the
// phone's (old) key.
func TestDevicePairingAndRemoval(t *testing.T) {
	laptop, phone, tablet, stranger := newNode(t, ""), newNode(t, "phone pass"), newNode(t, ""), newNode(t, "")
	id := laptop.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	ld := startDaemon(t, laptop)
	pd, td, sd := startDaemon(t, phone), startDaemon(t, tablet), startDaemon(t, stranger)
	all := []*daemonProc{ld, pd, td, sd}

	var added struct {
		CID string `json:"cid"`
	}
	laptop.json(&added, "add", writeTemp(t, "diary.txt", []byte("laptop diary")), "--title", "Diary", "--json")
	before := added.CID

	var offer pairOffer
	laptop.json(&offer, "device", "pair", "--json")
	if offer.Account != id || !strings.HasSuffix(offer.Address, "/p2p/"+ld.info.PeerID) || offer.Code != offer.Address+" "+offer.Secret {
		t.Fatalf("offer: %+v", offer)
	}

	// A wrong code: one clear line, nothing stored.
	wrong := []byte(offer.Secret)
	wrong[0] = map[bool]byte{true: '1', false: '0'}[wrong[0] == '0']
	r := stranger.fail(1, "device", "join", "--no-passphrase", offer.Address, string(wrong))
	if !strings.Contains(r.stderr, "wrong pairing code") || !strings.Contains(r.stderr, "nothing was stored") {
		t.Fatalf("wrong code: %q", r.stderr)
	}
	if out := stranger.ok("accounts"); strings.Contains(out, id) {
		t.Fatalf("the stranger stored the account after a wrong code:\n%s", out)
	}
	// A malformed one.
	r = stranger.fail(1, "device", "join", "--no-passphrase", offer.Address, "7KQ2")
	if !strings.Contains(r.stderr, "12") {
		t.Fatalf("malformed code: %q", r.stderr)
	}

	// The phone joins; its keys are encrypted with its own passphrase.
	out := phone.ok("device", "join", "--name", "phone", offer.Code)
	if !strings.Contains(out, id) || !strings.Contains(out, "encrypted with a passphrase") {
		t.Fatalf("join:\n%s", out)
	}
	phoneKey, err := os.ReadFile(filepath.Join(phone.dir, "keys", id+".key"))
	if err != nil || !bytes.HasPrefix(phoneKey, []byte("-----BEGIN AGE ENCRYPTED FILE-----")) {
		t.Fatalf("the phone's key file is not encrypted: %v", err)
	}
	// The code is one-time.
	r = stranger.fail(1, "device", "join", "--no-passphrase", offer.Code)
	if !strings.Contains(r.stderr, "used already") || !strings.Contains(r.stderr, "nothing was stored") {
		t.Fatalf("reused code: %q", r.stderr)
	}
	if out := stranger.ok("accounts"); strings.Contains(out, id) {
		t.Fatalf("the stranger stored the account with a used code:\n%s", out)
	}
	if !declaresDevice(t, laptop, id, pd.info.PeerID) {
		t.Fatal("the laptop's chain does not declare the phone")
	}

	// The phone reads the laptop's record and writes one the laptop reads.
	got := filepath.Join(t.TempDir(), "diary.out")
	waitUntil(t, 60*time.Second, "the phone reads the laptop's record", func() bool {
		return phone.run("get", before, "-o", got).code == 0
	}, all...)
	if string(readFile(t, got)) != "laptop diary" {
		t.Fatalf("the phone read %q", readFile(t, got))
	}
	phone.json(&added, "add", writeTemp(t, "photo.txt", []byte("phone photo")), "--title", "Photo", "--json")
	fromPhone := added.CID
	waitUntil(t, 60*time.Second, "the laptop reads the phone's record", func() bool {
		return laptop.run("get", fromPhone, "-o", filepath.Join(t.TempDir(), "p")).code == 0
	}, all...)

	// The tablet joins too.
	laptop.json(&offer, "device", "pair", "--json")
	tablet.ok("device", "join", "--no-passphrase", "--name", "tablet", offer.Code)

	// The phone is lost: the laptop removes it, and the key rotates.
	out = laptop.ok("device", "rm", pd.info.PeerID)
	if !strings.Contains(out, "rotated the account's signing and decryption keys") {
		t.Fatalf("device rm:\n%s", out)
	}
	waitUntil(t, 60*time.Second, "the tablet's chain withdraws the phone", func() bool {
		return !declaresDevice(t, tablet, id, pd.info.PeerID)
	}, all...)
	laptop.json(&added, "add", writeTemp(t, "after.txt", []byte("after the loss")), "--title", "After", "--json")
	after := added.CID
	waitUntil(t, 60*time.Second, "the tablet reads the record written after the removal", func() bool {
		return tablet.run("get", after, "-o", filepath.Join(t.TempDir(), "a")).code == 0
	}, all...)
	if r := phone.run("get", after, "-o", filepath.Join(t.TempDir(), "x")); r.code == 0 {
		t.Fatal("the removed phone read the record written after its removal")
	}
	// The tablet signs with the new signing key, which the laptop accepts.
	tablet.json(&added, "add", writeTemp(t, "tab.txt", []byte("tablet note")), "--title", "Tablet", "--json")
	fromTablet := added.CID
	waitUntil(t, 60*time.Second, "the laptop reads the tablet's record signed by the new key", func() bool {
		return laptop.run("get", fromTablet, "-o", filepath.Join(t.TempDir(), "t")).code == 0
	}, all...)
	for _, d := range all {
		d.stop()
	}

	// Every node of the account refuses the phone its blocks, and the
	// phone's key (the old identity) opens the old record, not the new.
	ctx := context.Background()
	phoneRepo, err := keyshare.Open(ctx, phone.dir, keyshare.Options{})
	if err != nil {
		t.Fatal(err)
	}
	oldKeys, err := phoneRepo.Unlock(ctx, protocol.AccountID(id), []byte("phone pass"))
	phoneRepo.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{laptop, tablet} {
		repo, err := keyshare.Open(ctx, n.dir, keyshare.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{before, fromPhone, after} {
			d, err := repo.MayServe(ctx, pd.info.PeerID, cid.MustParse(c))
			if err != nil || d.Allow {
				t.Fatalf("%s serves %s to the removed phone: %+v %v", n.dir, c, d, err)
			}
		}
		if _, _, err := repo.OpenRecord(ctx, oldKeys, cid.MustParse(after)); err == nil || !strings.Contains(err.Error(), "identity did not match") {
			t.Fatalf("the old key opens the record written after the removal: %v", err)
		}
		if _, body, err := repo.OpenRecord(ctx, oldKeys, cid.MustParse(before)); err != nil {
			t.Fatalf("the old key does not open the old record: %v", err)
		} else {
			body.Close()
		}
		repo.Close()
	}
}
