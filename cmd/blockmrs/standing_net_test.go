package main

import (
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestStandingGrantOverTheNetwork is the scenario with three
// daemons over libp2p: the patient gives her GP a laboratory scope; a
// clinic (her contact) later writes lab results for her; the GP's node
// reads them with no further step, and nothing else of hers. Both ways a
// future record reaches the GP are walked: first the clinic does not see
// the scope (it holds no more of her chain than her profile), so her
// node gives the GP the key when the record arrives and she acknowledges
// it; later the clinic has her chain and knows the GP, and wraps the key
// itself. Then she ends the scope: the GP loses the records it covered —
// both kinds — and gets no new one; the clinic's and her nodes refuse it.
func TestStandingGrantOverTheNetwork(t *testing.T) {
	patient, gp, clinic := newNode(t, ""), newNode(t, ""), newNode(t, "")
	patientID := patient.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	gpID := gp.initAccount("--name", "Dr GP", "--role", "clinician", "--no-passphrase")
	clinicID := clinic.initAccount("--name", "City Lab", "--role", "clinic", "--no-passphrase")
	pd, gd, cd := startDaemon(t, patient), startDaemon(t, gp), startDaemon(t, clinic)
	all := []*daemonProc{pd, gd, cd}
	clinic.ok("contact", "add", pd.addr(), patientID)
	patient.ok("contact", "add", cd.addr(), clinicID)
	gp.ok("contact", "add", pd.addr(), patientID)
	patient.ok("contact", "add", gd.addr(), gpID)
	patient.ok("unlock") // her node acknowledges and covers as records arrive

	const lab = "patient/Observation.rs?category=laboratory"
	patient.ok("grant", "--scope", lab, "--to", gpID)

	type written struct {
		Records []struct {
			CID  string `json:"cid"`
			Test string `json:"test"`
		} `json:"records"`
	}
	labAdd := func(values ...string) map[string]string {
		var w written
		clinic.json(&w, append([]string{"lab", "add", "--json", "--for", patientID}, values...)...)
		out := map[string]string{}
		for _, r := range w.Records {
			out[r.Test] = r.CID
		}
		return out
	}
	acknowledged := func(cids ...string) func() bool {
		return func() bool {
			var l struct {
				Records []struct {
					CID   string `json:"cid"`
					Proof string `json:"proof"`
				} `json:"records"`
			}
			patient.json(&l, "ls", "--json")
			n := 0
			for _, r := range l.Records {
				if slices.Contains(cids, r.CID) && r.Proof == "acknowledged" {
					n++
				}
			}
			return n == len(cids)
		}
	}
	gpReads := func(c string) bool {
		return gp.run("get", c, "-o", filepath.Join(t.TempDir(), "out")).code == 0
	}
	// scopedIn tells whether account's chain (as n holds it) gives gp the
	// key of c under a standing grant.
	scopedIn := func(n *node, account, c string) bool {
		var log []struct {
			Type    string   `json:"type"`
			Records []string `json:"records"`
			Party   string   `json:"party"`
			Scope   string   `json:"scope"`
		}
		n.json(&log, "log", account, "--json")
		for _, e := range log {
			if e.Type == "scoped" && e.Party == gpID && e.Scope == lab && slices.Contains(e.Records, c) {
				return true
			}
		}
		return false
	}

	// 1. The clinic does not see the scope: the patient's node covers.
	first := labAdd("fasting-glucose=95", "pulse=70")
	glucose, pulse := first["fasting-glucose"], first["pulse"]
	var note struct {
		CID string `json:"cid"`
	}
	clinic.json(&note, "add", "--json", "--kind", "note", "--for", patientID, "--title", "Letter", writeTemp(t, "letter.txt", []byte("see you in March")))
	waitUntil(t, 60*time.Second, "the patient's node acknowledges the clinic's records", acknowledged(glucose, pulse, note.CID), all...)
	waitUntil(t, 60*time.Second, "the GP reads the lab result the patient's node covered", func() bool { return gpReads(glucose) }, all...)
	if !scopedIn(patient, patientID, glucose) || scopedIn(clinic, clinicID, glucose) {
		t.Fatal("the glucose key did not come from the patient's node")
	}
	for what, c := range map[string]string{"the vital sign": pulse, "the note": note.CID} {
		if gpReads(c) || scopedIn(patient, patientID, c) {
			t.Fatalf("the GP reads %s, outside the laboratory scope", what)
		}
	}

	// 2. The clinic has her chain now (she acknowledged its records) and
	// learns the GP: it wraps the next lab result for the GP itself.
	clinic.ok("contact", "add", gd.addr(), gpID)
	waitUntil(t, 60*time.Second, "the clinic holds the patient's chain with the standing grant", func() bool {
		var log []struct {
			Type  string `json:"type"`
			Party string `json:"party"`
		}
		clinic.json(&log, "log", patientID, "--json")
		return slices.ContainsFunc(log, func(e struct {
			Type  string `json:"type"`
			Party string `json:"party"`
		}) bool {
			return e.Type == "scope" && e.Party == gpID
		})
	}, all...)
	ldl := labAdd("ldl=110")["ldl"]
	if !scopedIn(clinic, clinicID, ldl) {
		t.Fatal("the clinic did not wrap the new lab result for the standing grantee")
	}
	waitUntil(t, 60*time.Second, "the GP reads the lab result the clinic wrapped for it", func() bool { return gpReads(ldl) }, all...)
	waitUntil(t, 60*time.Second, "the patient acknowledges it", acknowledged(ldl), all...)
	if scopedIn(patient, patientID, ldl) {
		t.Fatal("the patient's node covered a record the clinic had wrapped")
	}

	// 3. She ends the scope: one entry. The GP's node drops both records
	// and can read neither; her node and the clinic's list the GP as
	// having lost them (so they refuse it their blocks); a new lab
	// result is not wrapped for it.
	patient.ok("revoke", "--scope", lab, "--from", gpID)
	for _, c := range []string{glucose, ldl} {
		waitUntil(t, 60*time.Second, "the GP's copy of "+c+" is gone", func() bool {
			return gp.run("cat", "--raw", c).code != 0
		}, all...)
		if gpReads(c) {
			t.Fatalf("the GP reads %s after the end", c)
		}
	}
	lost := func(n *node, c string) func() bool {
		return func() bool {
			var rd struct {
				Readers []struct {
					Account string `json:"account"`
				} `json:"readers"`
				Revoked []struct {
					Account string `json:"account"`
					Scope   string `json:"scope"`
				} `json:"revoked"`
			}
			n.json(&rd, "readers", c, "--json")
			for _, r := range rd.Readers {
				if r.Account == gpID {
					return false
				}
			}
			for _, r := range rd.Revoked {
				if r.Account == gpID && r.Scope == lab {
					return true
				}
			}
			return false
		}
	}
	for _, c := range []string{glucose, ldl} {
		waitUntil(t, 30*time.Second, "the patient's node lists the GP as having lost "+c, lost(patient, c), all...)
		waitUntil(t, 60*time.Second, "the clinic's node lists the GP as having lost "+c, lost(clinic, c), all...)
	}
	hdl := labAdd("hdl=50")["hdl"]
	if scopedIn(clinic, clinicID, hdl) {
		t.Fatal("the clinic wrapped a lab result for the GP after the end")
	}
	waitUntil(t, 60*time.Second, "the patient acknowledges the new lab result", acknowledged(hdl), all...)
	if scopedIn(patient, patientID, hdl) || gpReads(hdl) {
		t.Fatal("the GP got a lab result written after the end")
	}
	patient.verifyOK()
}
