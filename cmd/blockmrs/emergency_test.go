package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
)

// emergencyShown is what emergency show --json prints.
type emergencyShown struct {
	Packs []struct {
		ID         string   `json:"id"`
		Custodians []string `json:"custodians"`
		Ended      bool     `json:"ended"`
	} `json:"packs"`
	Uses []struct {
		Clinician string `json:"clinician"`
		Custodian string `json:"custodian"`
		Reason    string `json:"reason"`
		Given     bool   `json:"given"`
		Rule      string `json:"rule"`
	} `json:"uses"`
	Held []struct {
		Patient string `json:"patient"`
	} `json:"held"`
	Decided []struct {
		Clinician string `json:"clinician"`
		Given     bool   `json:"given"`
		Rule      string `json:"rule"`
	} `json:"decided"`
	Reported []struct {
		Clinician  string `json:"clinician"`
		Patient    string `json:"patient"`
		Given      bool   `json:"given"`
		ReportedBy string `json:"reported_by"`
	} `json:"reported"`
}

func emergencyOf(t *testing.T, n *node, args ...string) emergencyShown {
	t.Helper()
	var out emergencyShown
	n.json(&out, append([]string{"emergency", "show", "--json"}, args...)...)
	return out
}

const allergyJSON = `{"resourceType":"AllergyIntolerance","clinicalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical","code":"active"}]},"code":{"text":"Penicillin"},"patient":{"reference":"Patient/pat"}}`

// TestEmergencyAccessOverDaemons is the emergency scenario over
// four daemons: a patient sets up a 2-of-2 pack with her guardian and her
// clinic as custodians and goes offline; a clinician attested for
// emergencies by the clinic (attested by an authority the custodians
// trust) opens the summary; a clinician attested without emergency
// access, a self-declared one and a custodian cannot. The patient's node,
// back, shows the uses, and its audit log exports them as FHIR R4
// AuditEvents with the DICOM and ETREAT codes.
func TestEmergencyAccessOverDaemons(t *testing.T) {
	patient, guardian, clinic, doctors := newNode(t, ""), newNode(t, ""), newNode(t, ""), newNode(t, "")
	patID := patient.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	ginaID := guardian.initAccount("--name", "Gina", "--role", "patient", "--no-passphrase")
	clinicID := clinic.initAccount("--name", "St Marys", "--role", "clinic", "--no-passphrase")
	authID := clinic.initAccount("--name", "Health Authority", "--role", "authority", "--no-passphrase")
	greyID := doctors.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	plainID := doctors.initAccount("--name", "Dr Plain", "--role", "clinician", "--no-passphrase")
	doctors.initAccount("--name", "Dr Fake", "--role", "clinician", "--no-passphrase")
	patient.ok("add", "--kind", "fhir", writeTemp(t, "allergy.json", []byte(allergyJSON)), "--title", "Penicillin allergy")

	pd, gd, cd, dd := startDaemon(t, patient), startDaemon(t, guardian), startDaemon(t, clinic), startDaemon(t, doctors)
	all := []*daemonProc{pd, gd, cd, dd}

	// Attestations: the authority attests the clinic, the clinic its
	// clinicians (only Dr Grey for emergencies); the doctors' node
	// fetches their proofs from the clinic's node.
	clinic.ok("attest", clinicID, "--role", "clinic", "--account", authID)
	clinic.ok("contact", "add", dd.addr(), greyID)
	clinic.ok("contact", "add", dd.addr(), plainID)
	clinic.ok("attest", greyID, "--role", "clinician", "--emergency", "--account", clinicID)
	clinic.ok("attest", plainID, "--role", "clinician", "--account", clinicID)
	for _, id := range []string{greyID, plainID} {
		doctors.ok("attest", "check", id, "--from", cd.addr())
	}
	// The custodians trust the authority.
	clinic.ok("trust", "add", authID)
	guardian.ok("contact", "add", cd.addr(), authID)
	guardian.ok("trust", "add", authID)

	// The patient sets up her pack; the daemon delivers it.
	patient.ok("contact", "add", gd.addr(), ginaID)
	patient.ok("contact", "add", cd.addr(), clinicID)
	// Gina's node is also told of every use, as her guardian's node.
	setup := patient.ok("emergency", "setup", "--custodians", "Gina,St Marys", "--threshold", "2", "--notify", gd.info.PeerID)
	if !strings.Contains(setup, "2 of 2 custodians needed") {
		t.Fatalf("setup: %s", setup)
	}
	if r := patient.run("emergency", "setup", "--custodians", "Gina,St Marys", "--threshold", "1"); r.code == 0 || !strings.Contains(r.stderr, "no custodian alone") {
		t.Fatalf("a threshold of 1: %+v", r)
	}
	waitUntil(t, 60*time.Second, "both custodians hold the pack", func() bool {
		return len(emergencyOf(t, guardian).Held) == 1 && len(emergencyOf(t, clinic, "--account", clinicID).Held) == 1
	}, all...)

	// The patient's node goes away.
	pd.stop()
	via := "--via=" + gd.addr() + "," + cd.addr()
	reason := "unconscious after a road accident"

	// Refused: a clinician without emergency attestation, a self-declared
	// one, and a custodian (Gina, from the doctors' node's view: her own
	// share alone opens nothing and the other custodian refuses her).
	for _, acct := range []string{"Dr Plain", "Dr Fake"} {
		r := doctors.run("emergency", "open", patID, "--reason", reason, via, "--account", acct)
		if r.code == 0 || !strings.Contains(r.stderr, "not opened") {
			t.Fatalf("%s opened the summary: %+v", acct, r)
		}
	}
	r := guardian.run("emergency", "open", patID, "--reason", "just looking", "--via="+cd.addr())
	if r.code == 0 || !strings.Contains(r.stderr, "emergency/by-custodian") {
		t.Fatalf("a custodian opened the summary: %+v", r)
	}

	// Dr Grey opens it, with the patient's node off.
	var opened struct {
		Summary json.RawMessage `json:"summary"`
		From    []string        `json:"from"`
	}
	doctors.json(&opened, "emergency", "open", patID, "--reason", reason, via, "--account", "Dr Grey", "--json")
	if len(opened.From) != 2 || !strings.Contains(string(opened.Summary), "Penicillin") || !strings.Contains(string(opened.Summary), `"Bundle"`) {
		t.Fatalf("opened: %s from %v", opened.Summary, opened.From)
	}
	// Each custodian recorded every decision.
	dec := emergencyOf(t, guardian).Decided
	if len(dec) < 3 {
		t.Fatalf("the guardian's node recorded %d decisions: %+v", len(dec), dec)
	}
	rules := map[string]bool{}
	for _, d := range dec {
		rules[d.Rule] = true
	}
	for _, want := range []string{"emergency/share", "emergency/not-attested", "emergency/no-role"} {
		if !rules[want] {
			t.Errorf("the guardian's node has no %s decision: %+v", want, dec)
		}
	}

	// The guardian's node is told by the clinic's.
	waitUntil(t, 60*time.Second, "the guardian's node is told of Dr Grey's use", func() bool {
		for _, u := range emergencyOf(t, guardian).Reported {
			if u.Clinician == greyID && u.Patient == patID && u.Given && u.ReportedBy == cd.info.PeerID {
				return true
			}
		}
		return false
	}, all...)

	// The patient's node comes back; when it connects, the custodians
	// tell it, and it shows the uses.
	pd = startDaemon(t, patient)
	all[0] = pd
	patient.ok("contact", "add", gd.addr(), ginaID)
	patient.ok("contact", "add", cd.addr(), clinicID)
	waitUntil(t, 60*time.Second, "the patient's node shows Dr Grey's use from both custodians", func() bool {
		n := 0
		for _, u := range emergencyOf(t, patient).Uses {
			if u.Clinician == greyID && u.Given && u.Reason == reason {
				n++
			}
		}
		return n == 2
	}, all...)
	if out := patient.ok("emergency", "show"); !strings.Contains(out, "EMERGENCY ACCESS") || !strings.Contains(out, reason) {
		t.Fatalf("emergency show: %s", out)
	}

	// The patient's audit log holds the uses, exported as FHIR R4.
	var bundle struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal([]byte(patient.ok("audit", "--fhir")), &bundle); err != nil {
		t.Fatal(err)
	}
	um, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, e := range bundle.Entry {
		if _, err := um.Unmarshal(e.Resource); err != nil {
			t.Fatalf("not a valid R4 resource: %v\n%s", err, e.Resource)
		}
		s := string(e.Resource)
		if strings.Contains(s, `"110113"`) && strings.Contains(s, `"110127"`) && strings.Contains(s, `"ETREAT"`) &&
			strings.Contains(s, "http://dicom.nema.org/resources/ontology/DCM") && strings.Contains(s, "http://terminology.hl7.org/CodeSystem/v3-ActReason") &&
			strings.Contains(s, greyID) && strings.Contains(s, reason) {
			found++
		}
	}
	if bundle.ResourceType != "Bundle" || found < 2 {
		t.Fatalf("%d emergency AuditEvents with the codes in the patient's export", found)
	}

	// Ending the pack: the custodians refuse from then on.
	patient.ok("emergency", "end")
	waitUntil(t, 60*time.Second, "Dr Grey is refused after the end", func() bool {
		r := doctors.run("emergency", "open", patID, "--reason", "again", via, "--account", "Dr Grey")
		return r.code != 0 && strings.Contains(r.stderr, "no-pack")
	}, all...)
	patient.verifyOK()
}
