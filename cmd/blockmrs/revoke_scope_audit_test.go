package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// scopeEndEvent is the audit --json entry a revoke --scope writes.
type scopeEndEvent struct {
	Kind    string   `json:"kind"`
	Account string   `json:"account"`
	Subject string   `json:"subject"`
	Records []string `json:"records"`
	Reason  string   `json:"reason"`
}

// revoke --scope, and revoke --scope --rekey, write an audit entry (a
// revoke, as a revocation of records does) naming the scope and how many
// records it covered; audit lists it, and audit --fhir carries it as the
// AuditEvent other revocations are (Security Roles Changed, the
// records as entities).
func TestRevokeScopeAudited(t *testing.T) {
	p, c := newNode(t, ""), newNode(t, "")
	patID := p.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	drID := c.initAccount("--name", "Dr Grey", "--role", "clinician", "--no-passphrase")
	profile := writeTemp(t, "dr.car", nil)
	c.ok("id", "--export", profile)
	p.ok("contact", "add", profile)
	var labs struct {
		Records []struct {
			CID string `json:"cid"`
		} `json:"records"`
	}
	p.json(&labs, "lab", "add", "--json", "--for", "Pat", "fasting-glucose=95", "ldl=120", "pulse=70")
	if len(labs.Records) != 3 {
		t.Fatalf("lab add: %+v", labs)
	}
	var want []string
	for _, r := range labs.Records[:2] {
		want = append(want, r.CID)
	}
	slices.Sort(want)
	const lab, all = "patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=vital-signs"
	p.ok("grant", "--scope", lab, "--to", "Dr Grey")
	p.ok("grant", "--scope", all, "--to", "Dr Grey")

	ended := func(scope string) *scopeEndEvent {
		var out struct {
			Entries []scopeEndEvent `json:"entries"`
		}
		p.json(&out, "audit", "--json")
		for i, e := range out.Entries {
			if e.Kind == "revoke" && strings.Contains(e.Reason, "ended standing grant "+scope+" ") {
				return &out.Entries[i]
			}
		}
		return nil
	}
	if ended(lab) != nil {
		t.Fatal("an audit entry before any revoke --scope")
	}
	p.ok("revoke", "--scope", lab, "--from", "Dr Grey")
	e := ended(lab)
	if e == nil {
		t.Fatalf("audit --json has no entry for the ended scope:\n%s", p.ok("audit", "--json"))
	}
	got := slices.Sorted(slices.Values(e.Records))
	if e.Account != drID || e.Subject != patID || !slices.Equal(got, want) || !strings.Contains(e.Reason, "covering 2 record(s)") ||
		!strings.Contains(e.Reason, "in chain block ") {
		t.Fatalf("scope end entry: %+v, want Dr Grey, Pat, records %v, 2 covered", e, want)
	}
	if out := p.ok("audit"); !strings.Contains(out, "ended standing grant "+lab+" covering 2 record(s)") {
		t.Fatalf("audit's table does not show the scope end:\n%s", out)
	}

	// With re-key: the job's records (the vital sign), and its ID.
	p.ok("revoke", "--scope", all, "--from", "Dr Grey", "--rekey")
	e = ended(all)
	if e == nil || e.Account != drID || !slices.Equal(e.Records, []string{labs.Records[2].CID}) || !strings.Contains(e.Reason, "covering 1 record(s), with re-key (job ") {
		t.Fatalf("scope end with re-key: %+v", e)
	}

	// The FHIR export: one AuditEvent per scope end, shaped as any
	// revocation's.
	var bundle struct {
		Entry []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				Type         struct{ Code string }
				Action       string `json:"action"`
				OutcomeDesc  string `json:"outcomeDesc"`
				Agent        []struct {
					Who       struct{ Identifier struct{ Value string } }
					Requestor bool
				}
				Entity []struct {
					What struct{ Identifier struct{ Value string } }
					Role struct{ Code string }
				}
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal([]byte(p.ok("audit", "--fhir")), &bundle); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, en := range bundle.Entry {
		r := en.Resource
		for _, scope := range []string{lab, all} {
			if r.ResourceType == "AuditEvent" && r.Type.Code == "110136" && r.Action == "U" && strings.Contains(r.OutcomeDesc, "ended standing grant "+scope+" ") &&
				r.Agent[0].Who.Identifier.Value == drID && r.Agent[0].Requestor &&
				len(r.Entity) >= 2 && r.Entity[0].What.Identifier.Value == patID && r.Entity[1].Role.Code == "4" {
				found[scope] = true
			}
		}
	}
	if !found[lab] || !found[all] {
		t.Fatalf("the FHIR export lacks a scope end's AuditEvent (found %v):\n%s", found, p.ok("audit", "--fhir"))
	}
}
