package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestGuardianOverTheNetwork is the guardian scenario with two
// daemons over libp2p: a mother creates her daughter's account on her
// own node, with herself as guardian; a clinician asks the daughter for
// a record; the request reaches the mother's node, she approves it as
// guardian (a wardgrant on her own chain) and the clinician's node
// fetches and reads the record, showing who granted it. Then the
// daughter's chain takes the grant right away, and later the guardian
// altogether: the guardian's next acts are refused, and what she granted
// before stands.
func TestGuardianOverTheNetwork(t *testing.T) {
	mum, doc := newNode(t, ""), newNode(t, "")
	mumID := mum.initAccount("--name", "Mum", "--role", "patient", "--no-passphrase")
	docID := doc.initAccount("--name", "Dr Doc", "--role", "clinician", "--no-passphrase")
	md, dd := startDaemon(t, mum), startDaemon(t, doc)
	all := []*daemonProc{md, dd}

	var minor struct {
		Ward     string   `json:"ward"`
		Guardian string   `json:"guardian"`
		May      []string `json:"may"`
	}
	mum.json(&minor, "guardian", "create", "Kim", "--no-passphrase", "--json")
	kimID := minor.Ward
	if minor.Guardian != mumID || len(minor.May) != 4 {
		t.Fatalf("guardian create: %+v", minor)
	}
	var rec struct {
		CID string `json:"cid"`
	}
	mum.json(&rec, "add", "--json", "--account", "Kim", "--kind", "note", "--title", "Vaccinations", writeTemp(t, "v.txt", []byte("MMR 2024")))
	doc.ok("contact", "add", md.addr(), kimID)
	mum.ok("contact", "add", dd.addr(), docID)

	type inbox struct {
		Inbox []struct {
			ID    string `json:"id"`
			To    string `json:"to"`
			State string `json:"state"`
		} `json:"inbox"`
	}
	// arrived tells whether request id reached the mother's node, in the
	// inbox of the account as listed (a guardian sees its ward's
	// requests while it may approve them).
	arrived := func(id, as string) func() bool {
		return func() bool {
			var l inbox
			mum.json(&l, "requests", "--account", as, "--json")
			return slices.ContainsFunc(l.Inbox, func(q struct {
				ID    string `json:"id"`
				To    string `json:"to"`
				State string `json:"state"`
			}) bool {
				return q.ID == id && q.To == kimID
			})
		}
	}
	ask := func(reason, as string) string {
		var q struct {
			ID string `json:"id"`
		}
		doc.json(&q, "request", kimID, "--reason", reason, "--records", rec.CID, "--json")
		waitUntil(t, 60*time.Second, "the request to Kim reaches her guardian's node", arrived(q.ID, as), all...)
		return q.ID
	}
	docReads := func() bool {
		return doc.run("get", rec.CID, "-o", filepath.Join(t.TempDir(), "out")).code == 0
	}

	// 1. The guardian approves; the clinician reads, and its node names
	// the guardian as the one who granted.
	first := ask("school vaccination check", "Mum")
	if docReads() {
		t.Fatal("the clinician reads before any approval")
	}
	mum.ok("approve", first, "--account", "Mum")
	waitUntil(t, 90*time.Second, "the clinician reads the record the guardian granted", docReads, all...)
	var rd struct {
		Readers []struct {
			Account  string `json:"account"`
			Guardian string `json:"guardian"`
		} `json:"readers"`
	}
	doc.json(&rd, "readers", rec.CID, "--json")
	if !slices.ContainsFunc(rd.Readers, func(r struct {
		Account  string `json:"account"`
		Guardian string `json:"guardian"`
	}) bool {
		return r.Account == docID && r.Guardian == mumID
	}) {
		t.Fatalf("the clinician's node does not show the guardian's grant: %+v", rd)
	}
	if out := doc.ok("readers", rec.CID); !strings.Contains(out, "grantee, by guardian Mum") {
		t.Fatalf("readers does not name the guardian who shared the record:\n%s", out)
	}
	waitUntil(t, 60*time.Second, "the clinician's outbox shows the approval", func() bool {
		var l struct {
			Outbox []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"outbox"`
		}
		doc.json(&l, "requests", "--json")
		for _, q := range l.Outbox {
			if q.ID == first && q.State == "approved" {
				return true
			}
		}
		return false
	}, all...)

	// 2. Outside the rights: Kim keeps her mother as guardian for reading
	// only; the mother's next approval is refused.
	mum.ok("guardian", "add", mumID, "--account", "Kim", "--may", "read")
	second := ask("a second opinion", "Kim")
	if arrived(second, "Mum")() {
		t.Fatal("a guardian without the approve right is shown the ward's requests")
	}
	r := mum.fail(1, "approve", second, "--account", "Mum")
	if !strings.Contains(r.stderr, "does not let") {
		t.Fatalf("approve outside the rights: %q", r.stderr)
	}
	mum.fail(1, "guardian", "grant", "--ward", kimID, rec.CID, "--to", docID, "--account", "Mum")

	// 3. Removal: all rights again, then Kim removes her mother; her
	// next act is refused, what she granted before stands.
	mum.ok("guardian", "add", mumID, "--account", "Kim")
	mum.ok("guardian", "rm", mumID, "--account", "Kim")
	r = mum.fail(1, "guardian", "revoke", "--ward", kimID, rec.CID, "--from", docID, "--account", "Mum")
	if !strings.Contains(r.stderr, "removed") {
		t.Fatalf("revoke after removal: %q", r.stderr)
	}
	if !docReads() {
		t.Fatal("the grant the guardian made before her removal no longer stands")
	}
	var ls struct {
		Wards []struct {
			Ward string `json:"ward"`
			Live bool   `json:"live"`
		} `json:"wards"`
	}
	mum.json(&ls, "guardian", "ls", "--account", "Mum", "--json")
	if len(ls.Wards) != 3 || ls.Wards[0].Ward != kimID || ls.Wards[0].Live {
		t.Fatalf("the mother's wards after removal: %+v", ls.Wards)
	}
	mum.verifyOK()
	doc.verifyOK()
}
