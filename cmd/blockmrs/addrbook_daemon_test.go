package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// keptOf is the address book in 'peers --json'.
func keptOf(t *testing.T, n *node) map[string][]string {
	t.Helper()
	var out struct {
		Kept []struct {
			ID       string   `json:"id"`
			Addrs    []string `json:"addrs"`
			Accounts []string `json:"accounts"`
		} `json:"kept"`
	}
	n.json(&out, "peers", "--json")
	book := map[string][]string{}
	for _, k := range out.Kept {
		book[k.ID] = append(k.Addrs, k.Accounts...)
	}
	return book
}

// TestAddressBookAfterRestart over two daemons (separate processes on
// 127.0.0.1): the clinician adds the patient as a contact by address, and
// its node keeps where the patient's node listens; the clinician's daemon
// restarts (a new process, its peerstore empty) while the patient's runs
// on; the clinician's request then reaches the patient with no new
// 'contact add'. 'peers' shows the kept address and 'peers forget' drops
// it.
func TestAddressBookAfterRestart(t *testing.T) {
	patient, clinic := newNode(t, ""), newNode(t, "")
	patID := patient.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	clinicID := clinic.initAccount("--name", "Dr Jones", "--role", "clinician", "--no-passphrase")

	pd, cd := startDaemon(t, patient), startDaemon(t, clinic)
	clinic.ok("contact", "add", pd.addr(), patID)
	listen := strings.TrimSuffix(pd.addr(), "/p2p/"+pd.info.PeerID)
	waitUntil(t, 30*time.Second, "the clinician's node keeps the patient's node's address", func() bool {
		kept := keptOf(t, clinic)[pd.info.PeerID]
		return slices.Contains(kept, listen) && slices.Contains(kept, patID)
	}, pd, cd)

	cd.stop()
	cd = startDaemon(t, clinic)
	if !strings.Contains(cd.logs.String(), "gave the peerstore the kept addresses") {
		t.Fatalf("the restarted node loaded no kept address; log:\n%s", cd.logs)
	}
	if out := clinic.ok("peers"); !strings.Contains(out, pd.info.PeerID) || !strings.Contains(out, listen) {
		t.Fatalf("peers does not show the patient's node at %s:\n%s", listen, out)
	}

	clinic.ok("request", patID, "--reason", "follow-up")
	waitUntil(t, 60*time.Second, "the request reaches the patient's inbox", func() bool {
		inbox, _ := requestsOf(t, patient)
		return len(inbox) == 1 && inbox[0].From == clinicID
	}, pd, cd)

	// Forget drops it; a second forget says it is not there.
	clinic.ok("peers", "forget", pd.info.PeerID)
	if _, ok := keptOf(t, clinic)[pd.info.PeerID]; ok {
		t.Fatal("the patient's node is still kept after peers forget")
	}
	if r := clinic.run("peers", "forget", pd.info.PeerID); r.code == 0 || !strings.Contains(r.stderr, "not in the address book") {
		t.Fatalf("forget again: exit %d, %q", r.code, r.stderr)
	}
	if r := clinic.run("peers", "forget", "not-a-peer"); r.code == 0 || !strings.Contains(r.stderr, "not a peer ID") {
		t.Fatalf("forget a bad ID: exit %d, %q", r.code, r.stderr)
	}
}
