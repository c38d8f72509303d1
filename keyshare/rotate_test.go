package keyshare

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// chainOf returns the head and every raw block of p's chain.
func chainOf(t *testing.T, p *party) (cid.Cid, [][]byte) {
	t.Helper()
	ctx := context.Background()
	head := p.repo.mustHead(t, p.keys.ID)
	blocks, err := p.repo.ChainBack(ctx, head, NoneHeld, 1<<20, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	return head, blocks
}

// joinedDevice makes a fresh repo that receives p's keys and chain as a
// joining device does, its keys encrypted under passphrase.
func joinedDevice(t *testing.T, p *party, passphrase string) *party {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	raw, err := MarshalKeys(p.keys)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKeys(raw)
	if err != nil {
		t.Fatal(err)
	}
	head, blocks := chainOf(t, p)
	info, err := r.JoinAccount(ctx, k, head, blocks, []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	if !info.Local || info.Encrypted != (passphrase != "") || !info.Default {
		t.Fatalf("joined account: %+v", info)
	}
	if _, err := r.Unlock(ctx, k.ID, []byte("wrong")); passphrase != "" && !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("unlock with a wrong passphrase: %v", err)
	}
	k, err = r.Unlock(ctx, k.ID, []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	return &party{repo: r, keys: k}
}

func TestRotateAgeAfterRemoval(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	doc := newParty(t, "Dr Who", protocol.RoleClinician)
	laptop, phone := newPeerID(t), newPeerID(t)
	for _, peerID := range []string{laptop, phone} {
		if _, err := pat.repo.SetDevice(ctx, pat.keys, peerID, "", false); err != nil {
			t.Fatal(err)
		}
	}
	send(t, pat, doc)
	send(t, doc, pat)
	before, err := doc.repo.AddRecord(ctx, doc.keys, NewRecord{Title: "Before", Kind: protocol.KindFHIR,
		MediaType: "application/fhir+json", Subject: pat.keys.ID, Body: strings.NewReader(observation)})
	if err != nil {
		t.Fatal(err)
	}
	send(t, doc, pat)

	// The phone joins: it reads what the account reads.
	lost := joinedDevice(t, pat, "phone passphrase")
	send(t, doc, lost)
	if _, data, err := readAll(t, lost, before); err != nil || string(data) != observation {
		t.Fatalf("the joined device reads %q: %v", data, err)
	}
	if ok, why, err := mayServe(ctx, doc.repo, phone, before); err != nil || !ok {
		t.Fatalf("the doctor's node refuses the declared phone: %s %v", why, err)
	}

	// The phone is lost: the laptop withdraws it and rotates.
	old := pat.keys
	if _, err := pat.repo.SetDevice(ctx, pat.keys, phone, "", true); err != nil {
		t.Fatal(err)
	}
	rot, err := pat.repo.RotateAge(ctx, pat.keys)
	if err != nil {
		t.Fatal(err)
	}
	pat.keys = rot.Keys
	if rot.Recipient == old.Age.Recipient().String() || len(rot.Keys.Old) != 1 || !sameAge(rot.Keys.Old[0], old.Age.String()) {
		t.Fatalf("rotation: %+v", rot)
	}
	send(t, pat, doc)
	if info, _ := doc.repo.Account(ctx, pat.keys.ID); info.Recipient != rot.Recipient {
		t.Fatalf("the doctor's node knows recipient %s, not %s", info.Recipient, rot.Recipient)
	}
	if ok, why, err := mayServe(ctx, doc.repo, phone, before); err != nil || ok {
		t.Fatalf("the doctor's node still serves the removed phone: %s %v", why, err)
	}

	after, err := doc.repo.AddRecord(ctx, doc.keys, NewRecord{Title: "After", Kind: protocol.KindFHIR,
		MediaType: "application/fhir+json", Subject: pat.keys.ID, Body: strings.NewReader(observation)})
	if err != nil {
		t.Fatal(err)
	}
	own, err := pat.repo.AddRecord(ctx, pat.keys, NewRecord{Title: "Mine after", Kind: protocol.KindFile,
		MediaType: "text/plain", Body: strings.NewReader("diary")})
	if err != nil {
		t.Fatal(err)
	}
	send(t, doc, pat)
	send(t, doc, lost)
	send(t, pat, lost)
	for _, c := range []cid.Cid{before, after, own} {
		if _, _, err := readAll(t, pat, c); err != nil {
			t.Fatalf("the laptop reads %s: %v", c, err)
		}
	}
	// The old identity (all the lost phone holds) opens the record from
	// before and neither record written after the rotation.
	if _, _, err := readAll(t, lost, before); err != nil {
		t.Fatalf("the old identity no longer opens the old record: %v", err)
	}
	for _, c := range []cid.Cid{after, own} {
		if _, _, err := readAll(t, lost, c); err == nil || !strings.Contains(err.Error(), "identity did not match") {
			t.Fatalf("the old identity opens %s, written after the rotation: %v", c, err)
		}
		if _, _, err := pat.repo.OpenRecord(ctx, old, c); err == nil {
			t.Fatalf("the old keys open %s on the laptop", c)
		}
	}

	// Unlocking from disk gives the rotated keys.
	again, err := pat.repo.Unlock(ctx, pat.keys.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sameAge(again.Age, pat.keys.Age.String()) || len(again.Old) != 1 {
		t.Fatalf("unlocked after rotation: %s, %d retired", again.Age.Recipient(), len(again.Old))
	}
	// Keys unlocked before the rotation may not rotate again.
	if _, err := pat.repo.RotateAge(ctx, old); err == nil || !strings.Contains(err.Error(), "unlock the account again") {
		t.Fatalf("a rotation with stale keys: %v", err)
	}
	// A second rotation keeps both earlier identities.
	rot2, err := pat.repo.RotateAge(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	third, err := pat.repo.Unlock(ctx, pat.keys.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !sameAge(third.Age, rot2.Keys.Age.String()) || len(third.Old) != 2 {
		t.Fatalf("after two rotations: %d retired", len(third.Old))
	}
	pat.keys = third
	for _, c := range []cid.Cid{before, after, own} {
		if _, _, err := readAll(t, pat, c); err != nil {
			t.Fatalf("after two rotations the laptop reads %s: %v", c, err)
		}
	}
	mustVerify(t, pat)
	mustVerify(t, doc)

	// A device that joins now gets every identity.
	late := joinedDevice(t, pat, "pw")
	send(t, doc, late)
	send(t, pat, late)
	for _, c := range []cid.Cid{before, after, own} {
		if _, _, err := readAll(t, late, c); err != nil {
			t.Fatalf("a device joined after the rotations reads %s: %v", c, err)
		}
	}
}

func sameAge(id interface{ String() string }, s string) bool { return id.String() == s }

func TestJoinAccountRefusesMismatches(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	mal := newParty(t, "Mal", protocol.RolePatient)
	fresh, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	head, blocks := chainOf(t, pat)
	_, malBlocks := chainOf(t, mal)
	oldKeys := pat.keys
	cases := []struct {
		name   string
		keys   *Keys
		head   cid.Cid
		blocks [][]byte
		want   string
	}{
		{"another account's keys", mal.keys, head, blocks, "holds a block of"},
		{"another account's chain", pat.keys, head, malBlocks, "holds a block of"},
		{"no head", pat.keys, head, blocks[1:], "lacks its head"},
		{"junk block", pat.keys, head, [][]byte{[]byte("junk")}, "chain block"},
	}
	// Keys from before a rotation do not match the chain after it.
	rot, err := pat.repo.RotateAge(ctx, pat.keys)
	if err != nil {
		t.Fatal(err)
	}
	pat.keys = rot.Keys
	h2, b2 := chainOf(t, pat)
	cases = append(cases, struct {
		name   string
		keys   *Keys
		head   cid.Cid
		blocks [][]byte
		want   string
	}{"keys older than the chain", oldKeys, h2, b2, "do not match the recipient"})
	for _, tc := range cases {
		_, err := fresh.JoinAccount(ctx, tc.keys, tc.head, tc.blocks, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if _, err := os.Stat(fresh.keyPath(tc.keys.ID)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: a key file was stored: %v", tc.name, err)
		}
		if a, err := fresh.Account(ctx, tc.keys.ID); err == nil {
			t.Fatalf("%s: the account was stored: %+v", tc.name, a)
		}
	}
	// Joining twice is refused, and the first key file stays.
	if _, err := fresh.JoinAccount(ctx, pat.keys, h2, b2, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.JoinAccount(ctx, pat.keys, h2, b2, nil); err == nil || !strings.Contains(err.Error(), "already an account of this repo") {
		t.Fatalf("second join: %v", err)
	}
	if _, err := ParseKeys([]byte("-----BEGIN AGE ENCRYPTED FILE-----\n")); err == nil {
		t.Fatal("ParseKeys took an encrypted key file")
	}
}

// A device that joined before a rotation copies the rotation file from
// the device that rotated, and then opens the records written after.
func TestRotationReachesOtherDevices(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	tablet := joinedDevice(t, pat, "")
	if need, err := tablet.repo.NeedsRotation(ctx, pat.keys.ID); err != nil || need {
		t.Fatalf("needs rotation before any: %v %v", need, err)
	}
	if need, err := pat.repo.NeedsRotation(ctx, pat.keys.ID); err != nil || need {
		t.Fatalf("the first device needs a rotation before any: %v %v", need, err)
	}
	rot, err := pat.repo.RotateAge(ctx, pat.keys)
	if err != nil {
		t.Fatal(err)
	}
	pat.keys = rot.Keys
	if need, _ := pat.repo.NeedsRotation(ctx, pat.keys.ID); need {
		t.Fatal("the device that rotated needs its own rotation")
	}
	after, err := pat.repo.AddRecord(ctx, pat.keys, NewRecord{Title: "After", Kind: protocol.KindFile, MediaType: "text/plain", Body: strings.NewReader("new")})
	if err != nil {
		t.Fatal(err)
	}
	send(t, pat, tablet)
	if need, err := tablet.repo.NeedsRotation(ctx, pat.keys.ID); err != nil || !need {
		t.Fatalf("the tablet does not see it needs the rotation: %v %v", need, err)
	}
	if _, _, err := readAll(t, tablet, after); err == nil {
		t.Fatal("the tablet opened the new record without the rotation")
	}
	files, err := pat.repo.RotationFiles(ctx, pat.keys.ID)
	if err != nil || len(files) != 1 {
		t.Fatalf("rotation files: %d %v", len(files), err)
	}
	// A file whose bytes do not match its name is refused.
	bad := []RotationFile{{Name: files[0].Name, Data: append([]byte("x"), files[0].Data...)}}
	if _, err := tablet.repo.StoreRotations(ctx, pat.keys.ID, bad); err == nil {
		t.Fatal("a tampered rotation file was stored")
	}
	if _, err := tablet.repo.StoreRotations(ctx, pat.keys.ID, []RotationFile{{Name: "../../evil", Data: []byte("x")}}); err == nil {
		t.Fatal("a rotation file named out of the keys folder was stored")
	}
	if n, err := tablet.repo.StoreRotations(ctx, pat.keys.ID, files); err != nil || n != 1 {
		t.Fatalf("store rotations: %d %v", n, err)
	}
	if n, err := tablet.repo.StoreRotations(ctx, pat.keys.ID, files); err != nil || n != 0 {
		t.Fatalf("store rotations again: %d %v", n, err)
	}
	if need, _ := tablet.repo.NeedsRotation(ctx, pat.keys.ID); need {
		t.Fatal("the tablet still needs the rotation it holds")
	}
	k, err := tablet.repo.Unlock(ctx, pat.keys.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if k.Age.String() != pat.keys.Age.String() || len(k.Old) != 1 {
		t.Fatalf("the tablet's keys after the copy: %s, %d retired", k.Age.Recipient(), len(k.Old))
	}
	tablet.keys = k
	if _, data, err := readAll(t, tablet, after); err != nil || string(data) != "new" {
		t.Fatalf("the tablet reads the new record: %q %v", data, err)
	}
	// A session on the tablet picks the rotation up.
	s := NewSessions(tablet.repo)
	defer s.Close()
	if _, err := s.Unlock(ctx, pat.keys.ID, nil, 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Refresh(ctx, pat.keys.ID); !ok || err != nil {
		t.Fatalf("refresh: %v %v", ok, err)
	}
}

// With succession, removing a device rotates the signing key too, in the
// block that withdraws it; the other devices copy both new keys and sign
// blocks the first device accepts.
func TestRotateAllReachesOtherDevices(t *testing.T) {
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	phone := newPeerID(t)
	if _, err := pat.repo.SetDevice(ctx, pat.keys, phone, "phone", false); err != nil {
		t.Fatal(err)
	}
	tablet := joinedDevice(t, pat, "")
	lost := pat.keys.Clone()
	raw, _ := protocol.ParsePeerID(phone)
	rot, err := pat.repo.RotateAll(ctx, pat.keys, nil, []protocol.Entry{protocol.NewEntry(&protocol.Device{Peer: raw, Remove: true})})
	if err != nil {
		t.Fatal(err)
	}
	if !rot.Signing || bytes.Equal(rot.Keys.SigningKey(), lost.SigningKey()) || rot.Keys.ID != pat.keys.ID {
		t.Fatalf("rotation: %+v", rot)
	}
	pat.keys = rot.Keys
	if info, _ := pat.repo.Account(ctx, pat.keys.ID); len(info.Devices) != 0 || info.Recipient != rot.Recipient {
		t.Fatalf("after the rotation: %+v", info)
	}
	send(t, pat, tablet)
	files, err := pat.repo.RotationFiles(ctx, pat.keys.ID)
	if err != nil || len(files) != 1 {
		t.Fatalf("rotation files: %d %v", len(files), err)
	}
	if _, err := tablet.repo.StoreRotations(ctx, pat.keys.ID, files); err != nil {
		t.Fatal(err)
	}
	k, err := tablet.repo.Unlock(ctx, pat.keys.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.SigningKey(), rot.Keys.SigningKey()) || k.Age.String() != rot.Keys.Age.String() || k.ID != pat.keys.ID {
		t.Fatal("the tablet did not take the new keys")
	}
	tablet.keys = k
	c, err := tablet.repo.AddRecord(ctx, k, NewRecord{Title: "From the tablet", Kind: protocol.KindFile, MediaType: "text/plain", Body: strings.NewReader("t")})
	if err != nil {
		t.Fatal(err)
	}
	send(t, tablet, pat)
	if _, data, err := readAll(t, pat, c); err != nil || string(data) != "t" {
		t.Fatalf("the laptop reads the tablet's record signed by the new key: %q %v", data, err)
	}
	mustVerify(t, pat)
	mustVerify(t, tablet)
	// A device that joins after the succession gets the successor keys.
	late := joinedDevice(t, pat, "")
	send(t, pat, late) // the records' blocks, as the network brings them
	if !bytes.Equal(late.keys.SigningKey(), rot.Keys.SigningKey()) || late.keys.ID != pat.keys.ID {
		t.Fatal("a device joined after the succession lacks the successor key")
	}
	c2, err := late.repo.AddRecord(ctx, late.keys, NewRecord{Title: "Late", Kind: protocol.KindFile, MediaType: "text/plain", Body: strings.NewReader("l")})
	if err != nil {
		t.Fatal(err)
	}
	send(t, late, pat)
	if _, _, err := readAll(t, pat, c2); err != nil {
		t.Fatalf("the laptop reads the late device's record: %v", err)
	}
	// The keys the lost phone holds no longer sign for the account.
	if _, err := pat.repo.AddRecord(ctx, lost, NewRecord{Title: "Forged", Kind: protocol.KindFile, MediaType: "text/plain", Body: strings.NewReader("x")}); err == nil {
		t.Fatal("the retired signing key still signs")
	}
}
