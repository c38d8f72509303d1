package main

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// handoverOffer is what 'guardian handover --json' prints.
type handoverOffer struct {
	Account  string `json:"account"`
	Secret   string `json:"secret"`
	Address  string `json:"address"`
	Code     string `json:"code"`
	WardName string `json:"ward_name"`
	Join     string `json:"join"`
}

// localAccount reports whether n's repo holds account id's keys.
func localAccount(t *testing.T, n *node, id string) bool {
	t.Helper()
	var l struct {
		Accounts []struct {
			ID    string `json:"id"`
			Local bool   `json:"local"`
		} `json:"accounts"`
	}
	n.json(&l, "accounts", "--json")
	for _, a := range l.Accounts {
		if a.ID == id && a.Local {
			return true
		}
	}
	return false
}

// TestGuardianHandover hands a minor's account over from the mother's
// node to the grown-up's own node, over two daemons on 127.0.0.1: the
// grown-up's node reads the record written before and writes a new one;
// the mother's repo no longer holds the keys, and a block signed with
// the keys it held is refused; the mother reads the new record while her
// appointment gives read, and once the grown-up set its end in the past
// her next act is refused. Refused too: handing over an account that is
// not a ward of the acting account, and a wrong code.
func TestGuardianHandover(t *testing.T) {
	mum, kim := newNode(t, ""), newNode(t, "kim pass")
	mumID := mum.initAccount("--name", "Mum", "--role", "patient", "--no-passphrase")
	md, kd := startDaemon(t, mum), startDaemon(t, kim)
	all := []*daemonProc{md, kd}

	var minor struct {
		Ward string `json:"ward"`
	}
	mum.json(&minor, "guardian", "create", "Kim", "--until", "30d", "--no-passphrase", "--json")
	kimID := minor.Ward
	mum.json(&minor, "guardian", "create", "Lea", "--no-passphrase", "--json")
	leaID := minor.Ward
	var rec struct {
		CID string `json:"cid"`
	}
	mum.json(&rec, "add", "--json", "--account", "Kim", "--kind", "note", "--title", "Vaccinations", writeTemp(t, "v.txt", []byte("MMR 2024")))
	before := rec.CID
	// A parent who kept a copy of the keys: the test checks that what it
	// signs with them after the hand-over is refused.
	oldKeyFile, err := os.ReadFile(filepath.Join(mum.dir, "keys", kimID+".key"))
	if err != nil {
		t.Fatal(err)
	}

	// Refusals: the acting account itself, and an account that never
	// appointed the acting one (Kim never appointed Lea).
	r := mum.fail(1, "guardian", "handover", "Mum", "--account", "Mum")
	if !strings.Contains(r.stderr, "cannot hand itself over") {
		t.Fatalf("handover of oneself: %q", r.stderr)
	}
	r = mum.fail(1, "guardian", "handover", kimID, "--account", "Lea")
	if !strings.Contains(r.stderr, "never appointed") {
		t.Fatalf("handover by a non-guardian: %q", r.stderr)
	}
	if !localAccount(t, mum, kimID) {
		t.Fatal("a refused hand-over dropped the keys")
	}

	var offer handoverOffer
	mum.json(&offer, "guardian", "handover", "Kim", "--json")
	if offer.Account != kimID || offer.WardName != "Kim" || !strings.HasSuffix(offer.Address, "/p2p/"+md.info.PeerID) || !strings.Contains(offer.Join, "--takeover '"+offer.Code+"'") {
		t.Fatalf("offer: %+v", offer)
	}

	// A wrong code stores nothing, and the keys stay with Mum.
	wrong := []byte(offer.Secret)
	wrong[0] = map[bool]byte{true: '1', false: '0'}[wrong[0] == '0']
	r = kim.fail(1, "device", "join", "--takeover", offer.Address, string(wrong))
	if !strings.Contains(r.stderr, "wrong pairing code") || !strings.Contains(r.stderr, "nothing was stored") {
		t.Fatalf("wrong code: %q", r.stderr)
	}
	if localAccount(t, kim, kimID) || !localAccount(t, mum, kimID) {
		t.Fatal("a wrong code moved the account")
	}

	// The mother runs the hand-over as people do, waiting for the
	// grown-up's node (the offer replaces the one above); the grown-up's
	// node takes the account over under its passphrase with the code it
	// prints.
	cmd := mum.command("guardian", "handover", "--no-qr", "Kim")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	code := ""
	var printed []string
	for code == "" && lines.Scan() {
		printed = append(printed, lines.Text())
		if c, ok := strings.CutPrefix(lines.Text(), "on the grown-up's node: blockmrs device join --takeover '"); ok {
			code = strings.TrimSuffix(c, "'")
		}
	}
	if code == "" || code == offer.Code {
		t.Fatalf("guardian handover printed no new code:\n%s\n%s", strings.Join(printed, "\n"), stderr.String())
	}
	var took struct {
		Account struct {
			ID        string `json:"id"`
			Encrypted bool   `json:"encrypted"`
		} `json:"account"`
		From    string `json:"from"`
		Removed struct {
			PeerID  string `json:"peer_id"`
			Signing bool   `json:"signing"`
		} `json:"removed"`
	}
	kim.json(&took, "device", "join", "--takeover", "--name", "kim-laptop", "--json", code)
	for lines.Scan() {
		printed = append(printed, lines.Text())
	}
	if err := cmd.Wait(); err != nil || !strings.Contains(strings.Join(printed, "\n"), "this repo no longer holds Kim's keys") {
		t.Fatalf("guardian handover: %v\n%s\n%s", err, strings.Join(printed, "\n"), stderr.String())
	}
	if took.Account.ID != kimID || !took.Account.Encrypted || took.From != md.info.PeerID || took.Removed.PeerID != md.info.PeerID || !took.Removed.Signing {
		t.Fatalf("takeover: %+v", took)
	}
	if declaresDevice(t, kim, kimID, md.info.PeerID) || !declaresDevice(t, kim, kimID, kd.info.PeerID) {
		t.Fatal("the grown-up's chain still declares the mother's node, or not its own")
	}
	// The mother's repo forgot the keys: no key file, not an account it
	// acts for, nothing it can sign as Kim.
	waitUntil(t, 30*time.Second, "the mother's repo forgets Kim's keys", func() bool { return !localAccount(t, mum, kimID) }, all...)
	if _, err := os.Stat(filepath.Join(mum.dir, "keys", kimID+".key")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Kim's key file stays on the mother's node: %v", err)
	}
	r = mum.fail(1, "add", "--account", kimID, "--title", "x", writeTemp(t, "x.txt", []byte("x")))
	if !strings.Contains(r.stderr, "not an account of this repo") {
		t.Fatalf("the mother writes as Kim after the hand-over: %q", r.stderr)
	}
	if !localAccount(t, mum, leaID) || !localAccount(t, mum, mumID) {
		t.Fatal("the hand-over dropped another account of the mother's repo")
	}

	// The grown-up's node reads the old record and writes a new one,
	// which the mother reads while her appointment gives read.
	waitUntil(t, 60*time.Second, "the grown-up's node reads the record written before", func() bool {
		return kim.run("get", before, "-o", filepath.Join(t.TempDir(), "b")).code == 0
	}, all...)
	kim.json(&rec, "add", "--json", "--kind", "note", "--title", "Grown up", writeTemp(t, "g.txt", []byte("my own note")))
	after := rec.CID
	waitUntil(t, 90*time.Second, "the guardian reads the new record under her read right", func() bool {
		return mum.run("get", after, "--account", "Mum", "-o", filepath.Join(t.TempDir(), "a")).code == 0
	}, all...)

	// The grown-up ends the appointment now: the mother's next act is
	// refused, and a record written after is closed to her.
	until := time.Now().Add(15 * time.Second).UTC().Format(time.RFC3339)
	kim.ok("guardian", "add", mumID, "--until", until)
	waitUntil(t, 60*time.Second, "the mother's node sees the appointment ended", func() bool {
		var ls struct {
			Wards []struct {
				Ward  string    `json:"ward"`
				Live  bool      `json:"live"`
				Until time.Time `json:"until"`
			} `json:"wards"`
		}
		mum.json(&ls, "guardian", "ls", "--account", "Mum", "--json")
		return len(ls.Wards) > 0 && ls.Wards[0].Ward == kimID && !ls.Wards[0].Live && ls.Wards[0].Until.Format(time.RFC3339) == until
	}, all...)
	r = mum.fail(1, "guardian", "grant", "--ward", kimID, before, "--to", leaID, "--account", "Mum")
	if !strings.Contains(r.stderr, "appointment's end") {
		t.Fatalf("grant after the appointment's end: %q", r.stderr)
	}
	kim.json(&rec, "add", "--json", "--kind", "note", "--title", "Later", writeTemp(t, "l.txt", []byte("later note")))
	later := rec.CID
	var rd struct {
		Readers []struct {
			Account string `json:"account"`
		} `json:"readers"`
	}
	kim.json(&rd, "readers", later, "--json")
	for _, x := range rd.Readers {
		if x.Account == mumID {
			t.Fatalf("the record written after the appointment's end is open to the mother: %+v", rd)
		}
	}
	mum.verifyOK()
	kim.verifyOK()
	for _, d := range all {
		d.stop()
	}

	// A block signed with the keys the mother held (retired by the
	// takeover's succession) is refused by both nodes.
	old, err := keyshare.ParseKeys(oldKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []*node{kim, mum} {
		repo, err := keyshare.Open(ctx, n.dir, keyshare.Options{})
		if err != nil {
			t.Fatal(err)
		}
		info, err := repo.Account(ctx, protocol.AccountID(kimID))
		if err != nil {
			repo.Close()
			t.Fatal(err)
		}
		peer, _ := protocol.ParsePeerID(md.info.PeerID)
		prev := protocol.NewLink(info.Head)
		b := &protocol.Block{Version: protocol.BlockVersion, Seq: info.Seq + 1, Prev: &prev, Time: time.Now().UnixMilli(),
			Entries: []protocol.Entry{protocol.NewEntry(&protocol.Device{Peer: peer, Name: "mum again"})}}
		raw, c, err := b.Sign(old.Sign)
		if err != nil {
			repo.Close()
			t.Fatal(err)
		}
		_, aerr := repo.ApplyChains(ctx, []cid.Cid{c}, map[cid.Cid][]byte{c: raw})
		got, _ := repo.Account(ctx, protocol.AccountID(kimID))
		repo.Close()
		var se *keyshare.SignerError
		if !errors.As(aerr, &se) || got.Head != info.Head {
			t.Fatalf("%s accepts a block signed by the retired key: %v (head %s, was %s)", n.dir, aerr, got.Head, info.Head)
		}
	}
}
