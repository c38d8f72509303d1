package main

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

// freeListen returns a TCP listen address on 127.0.0.1 free now, so a
// daemon restarted with it is found where it was.
func freeListen(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return "/ip4/127.0.0.1/tcp/" + port
}

// packShown is a pack in emergency show --json, with its delivery.
type packShown struct {
	ID       string `json:"id"`
	Ended    bool   `json:"ended"`
	Delivery []struct {
		Custodian string `json:"custodian"`
		State     string `json:"state"`
	} `json:"delivery"`
}

func packsOf(t *testing.T, n *node) []packShown {
	t.Helper()
	var out struct {
		Packs []packShown `json:"packs"`
	}
	n.json(&out, "emergency", "show", "--json")
	return out.Packs
}

func heldOf(t *testing.T, n *node, account string) []string {
	t.Helper()
	var out struct {
		Held []struct {
			ID      string `json:"id"`
			Patient string `json:"patient"`
		} `json:"held"`
	}
	n.json(&out, "emergency", "show", "--json", "--account", account)
	var ids []string
	for _, h := range out.Held {
		ids = append(ids, h.Patient+"/"+h.ID)
	}
	slices.Sort(ids)
	return ids
}

// states maps custodian → delivery state of the pack with id.
func states(packs []packShown, id string) map[string]string {
	out := map[string]string{}
	for _, p := range packs {
		if p.ID == id {
			for _, d := range p.Delivery {
				out[d.Custodian] = d.State
			}
		}
	}
	return out
}

// TestEmergencyDeliveryAfterRestart over three daemons (and a stranger's
// node): the patient sets up her pack while both custodians' nodes are
// off, and shows them waiting; her node restarts; the custodians' nodes
// come back at their addresses and her node, by itself, delivers the
// pack, and shows it delivered. A stranger's pack naming the same
// custodians, and its end, touch only the stranger's pack. The patient
// replaces her setup: the custodians drop the old pack.
func TestEmergencyDeliveryAfterRestart(t *testing.T) {
	patient, guardian, clinic, stranger := newNode(t, ""), newNode(t, ""), newNode(t, ""), newNode(t, "")
	patID := patient.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	ginaID := guardian.initAccount("--name", "Gina", "--role", "patient", "--no-passphrase")
	clinicID := clinic.initAccount("--name", "St Marys", "--role", "clinic", "--no-passphrase")
	malID := stranger.initAccount("--name", "Mal", "--role", "patient", "--no-passphrase")
	patient.ok("add", "--kind", "fhir", writeTemp(t, "allergy.json", []byte(allergyJSON)), "--title", "Penicillin allergy")
	gListen, cListen := "BLOCKMRS_LISTEN="+freeListen(t), "BLOCKMRS_LISTEN="+freeListen(t)

	pd, gd, cd := startDaemon(t, patient), startDaemon(t, guardian, gListen), startDaemon(t, clinic, cListen)
	patient.ok("contact", "add", gd.addr(), ginaID)
	patient.ok("contact", "add", cd.addr(), clinicID)
	gAddr, cAddr := gd.addr(), cd.addr()
	gd.stop()
	cd.stop()

	// Set up with both custodians off: waiting for both.
	patient.ok("emergency", "setup", "--custodians", "Gina,St Marys", "--threshold", "2")
	packs := packsOf(t, patient)
	if len(packs) != 1 {
		t.Fatalf("packs: %+v", packs)
	}
	first := packs[0].ID
	if s := states(packs, first); s[ginaID] != "waiting" || s[clinicID] != "waiting" {
		t.Fatalf("with the custodians off: %v", s)
	}
	if out := patient.ok("emergency", "show"); !strings.Contains(out, "pack to Gina") || !strings.Contains(out, "waiting") {
		t.Fatalf("emergency show: %s", out)
	}
	// Its node tried, and kept where the custodians' nodes were.
	waitUntil(t, 30*time.Second, "the patient's node keeps both custodians' addresses", func() bool {
		return strings.Count(pd.logs.String(), "kept a known account's node's addresses") >= 2
	}, pd)

	// The patient's node restarts; the custodians' nodes come back; nobody
	// connects anyone: her node dials them.
	pd.stop()
	pd = startDaemon(t, patient)
	gd, cd = startDaemon(t, guardian, gListen), startDaemon(t, clinic, cListen)
	if gd.addr() != gAddr || cd.addr() != cAddr {
		t.Fatalf("the custodians' nodes moved: %s %s", gd.addr(), cd.addr())
	}
	all := []*daemonProc{pd, gd, cd}
	waitUntil(t, 120*time.Second, "both custodians hold the pack", func() bool {
		return slices.Equal(heldOf(t, guardian, "Gina"), []string{patID + "/" + first}) &&
			slices.Equal(heldOf(t, clinic, "St Marys"), []string{patID + "/" + first})
	}, all...)
	waitUntil(t, 30*time.Second, "the patient's node shows the pack delivered", func() bool {
		s := states(packsOf(t, patient), first)
		return s[ginaID] == "delivered" && s[clinicID] == "delivered"
	}, all...)
	if !strings.Contains(pd.logs.String(), "gave the peerstore the kept addresses") {
		t.Fatalf("the patient's node did not dial by itself; log:\n%s", pd.logs)
	}

	// A stranger sets up a pack naming the same custodians and ends it:
	// only its own pack comes and goes.
	sd := startDaemon(t, stranger)
	all = append(all, sd)
	stranger.ok("contact", "add", gd.addr(), ginaID)
	stranger.ok("contact", "add", cd.addr(), clinicID)
	stranger.ok("emergency", "setup", "--custodians", "Gina,St Marys", "--threshold", "2")
	waitUntil(t, 60*time.Second, "the guardian holds the stranger's pack beside Pat's", func() bool {
		return len(heldOf(t, guardian, "Gina")) == 2
	}, all...)
	stranger.ok("emergency", "end")
	waitUntil(t, 60*time.Second, "the stranger's end drops only its own pack", func() bool {
		return slices.Equal(heldOf(t, guardian, "Gina"), []string{patID + "/" + first}) &&
			slices.Equal(heldOf(t, clinic, "St Marys"), []string{patID + "/" + first})
	}, all...)
	for _, s := range heldOf(t, guardian, "Gina") {
		if strings.HasPrefix(s, malID) {
			t.Fatalf("the stranger's pack is still held: %s", s)
		}
	}

	// The patient replaces her setup: the custodians hold only the new
	// pack, and her node shows the old one's end delivered.
	patient.ok("emergency", "setup", "--custodians", "Gina,St Marys", "--threshold", "2")
	packs = packsOf(t, patient)
	second := packs[0].ID
	if second == first {
		t.Fatal("no new pack")
	}
	waitUntil(t, 60*time.Second, "the custodians drop the replaced pack", func() bool {
		return slices.Equal(heldOf(t, guardian, "Gina"), []string{patID + "/" + second}) &&
			slices.Equal(heldOf(t, clinic, "St Marys"), []string{patID + "/" + second})
	}, all...)
	waitUntil(t, 30*time.Second, "the old pack's end is shown delivered", func() bool {
		s := states(packsOf(t, patient), first)
		return s[ginaID] == "delivered" && s[clinicID] == "delivered"
	}, all...)
	patient.verifyOK()
}
