package main

import (
	"path/filepath"
	"testing"
	"time"
)

// TestRecordForPatientReachesHerOverTheNetwork: two daemons that added
// each other as contacts by address. The clinician's `add --for` is all it
// takes: the patient's node fetches the record over libp2p, and once she
// unlocks, her node acknowledges it, so `ls --json` lists it readable and
// acknowledged and she reads its bytes. No export or import.
func TestRecordForPatientReachesHerOverTheNetwork(t *testing.T) {
	patient, clinic := newNode(t, "patient passphrase"), newNode(t, "")
	patientID := patient.initAccount("--name", "Pat", "--role", "patient")
	clinicID := clinic.initAccount("--name", "Dr Jones", "--role", "clinician", "--no-passphrase")
	pd, cd := startDaemon(t, patient), startDaemon(t, clinic)
	clinic.ok("contact", "add", pd.addr(), patientID)
	patient.ok("contact", "add", cd.addr(), clinicID)

	const body = "Fasting glucose 5.1 mmol/L\n"
	var added struct {
		CID string `json:"cid"`
	}
	clinic.json(&added, "add", "--json", "--kind", "note", "--for", patientID, "--title", "Lab panel", writeTemp(t, "lab.txt", []byte(body)))
	patient.ok("unlock")

	type row struct {
		CID      string `json:"cid"`
		Author   string `json:"author"`
		Title    string `json:"title"`
		Readable bool   `json:"readable"`
		Acked    bool   `json:"acked"`
		Proof    string `json:"proof"`
		Error    string `json:"error"`
	}
	var got row
	waitUntil(t, 30*time.Second, "the patient lists the clinician's record, acknowledged", func() bool {
		var l struct {
			Records []row `json:"records"`
		}
		patient.json(&l, "ls", "--json")
		for _, r := range l.Records {
			if r.CID == added.CID {
				got = r
				return r.Proof == "acknowledged"
			}
		}
		return false
	}, pd, cd)
	if !got.Readable || !got.Acked || got.Author != clinicID || got.Title != "Lab panel" || got.Error != "" {
		t.Fatalf("the patient's row: %+v", got)
	}
	out := filepath.Join(t.TempDir(), "lab.out")
	patient.ok("get", added.CID, "-o", out)
	if string(readFile(t, out)) != body {
		t.Fatalf("the patient reads %q", readFile(t, out))
	}
	patient.verifyOK()
}
