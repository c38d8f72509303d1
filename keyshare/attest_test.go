package keyshare

// Attestations over real repos: chains signed, exported, verified and
// applied, and the attacks on them — a forged attestation by a
// non-authority, a clinic attesting an authority, an untrusted authority,
// expiry, withdrawal, a wrong role, a loop — written straight onto the
// attackers' chains (appendBlock), past the checks Attest makes, so that
// only the verifier's policy stands between them and a verified role.

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// world is an authority, a clinic and a clinician, each in its own repo,
// and a patient who verifies roles in hers. Each repo knows the others'
// chains as sending CARs makes them known.
type world struct {
	auth, clinic, doc, pat *party
	clock                  *atomic.Int64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	clock := new(atomic.Int64)
	clock.Store(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
	opts := Options{Clock: func() time.Time { return time.UnixMilli(clock.Load()) }}
	w := &world{
		auth:   newPartyWith(t, "Health Authority", protocol.RoleAuthority, opts),
		clinic: newPartyWith(t, "St Mary's", protocol.RoleClinic, opts),
		doc:    newPartyWith(t, "Dr Grey", protocol.RoleClinician, opts),
		pat:    newPartyWith(t, "Pat", protocol.RolePatient, opts),
		clock:  clock,
	}
	send(t, w.clinic, w.auth)
	send(t, w.doc, w.clinic)
	return w
}

func (w *world) advance(d time.Duration) { w.clock.Add(d.Milliseconds()) }

func (w *world) now() time.Time { return time.UnixMilli(w.clock.Load()) }

// attestAll makes auth attest the clinic and the clinic attest the
// doctor, and hands the doctor's node the chains it serves proofs from.
func (w *world) attestAll(t *testing.T, until time.Time) {
	t.Helper()
	ctx := context.Background()
	if _, err := w.auth.repo.Attest(ctx, w.auth.keys, w.clinic.keys.ID, AttestOptions{Role: protocol.RoleClinic}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.clinic.repo.Attest(ctx, w.clinic.keys, w.doc.keys.ID, AttestOptions{Role: protocol.RoleClinician, Department: "Cardiology", Emergency: true, Until: until}); err != nil {
		t.Fatal(err)
	}
	send(t, w.auth, w.doc)
	send(t, w.clinic, w.doc)
	send(t, w.auth, w.clinic)
}

// prove hands to's repo the role proof from's repo gives for id.
func prove(t *testing.T, from, to *party, id protocol.AccountID) []protocol.AccountID {
	t.Helper()
	ctx := context.Background()
	raws, err := from.repo.RoleProofBlocks(ctx, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed, problems, err := to.repo.ApplyRoleProof(ctx, id, raws)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("role proof problems: %v", problems)
	}
	return changed
}

func roleOf(t *testing.T, p *party, id protocol.AccountID) RoleProof {
	t.Helper()
	rp, err := p.repo.RoleOf(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

// The must-show case over repos: a clinician attested by a clinic
// attested by a trusted authority is verified on a node that never met
// any of them, from the proof the clinician's node gives; once the clinic
// withdraws, it is not.
func TestAttestedClinicianVerified(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.attestAll(t, time.Time{})

	if got := prove(t, w.doc, w.pat, w.doc.keys.ID); len(got) != 3 {
		t.Fatalf("proof brought chains %v, want the doctor's, the clinic's and the authority's", got)
	}
	if rp := roleOf(t, w.pat, w.doc.keys.ID); rp.Verified || rp.Rule != RuleRoleUntrusted {
		t.Fatalf("verified before the authority is trusted: %+v", rp)
	}
	if err := w.pat.repo.Trust(ctx, w.auth.keys.ID); err != nil {
		t.Fatal(err)
	}
	rp := roleOf(t, w.pat, w.doc.keys.ID)
	if !rp.Verified || rp.Rule != RuleRoleVerified || rp.Department != "Cardiology" || !rp.Emergency {
		t.Fatalf("not verified: %+v", rp)
	}
	if !slices.Equal(rp.Path, []protocol.AccountID{w.auth.keys.ID, w.clinic.keys.ID, w.doc.keys.ID}) {
		t.Fatalf("path %v", rp.Path)
	}

	// Withdrawal, proven by the clinic's node.
	if _, err := w.clinic.repo.Unattest(ctx, w.clinic.keys, w.doc.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.clinic.repo.Unattest(ctx, w.clinic.keys, w.doc.keys.ID); !errors.Is(err, ErrNoAttestation) {
		t.Fatalf("second withdrawal: %v", err)
	}
	prove(t, w.clinic, w.pat, w.doc.keys.ID)
	if rp := roleOf(t, w.pat, w.doc.keys.ID); rp.Verified || rp.Rule != RuleRoleWithdrawn {
		t.Fatalf("verified after withdrawal: %+v", rp)
	}
	// An older copy of the clinic's chain (the doctor's node never got the
	// withdrawal) does not bring the role back: no rollback.
	prove(t, w.doc, w.pat, w.doc.keys.ID)
	if rp := roleOf(t, w.pat, w.doc.keys.ID); rp.Verified {
		t.Fatalf("a stale proof undid the withdrawal: %+v", rp)
	}
	given, _, err := w.clinic.repo.Attestations(ctx, w.clinic.keys.ID)
	if err != nil || len(given) != 1 || given[0].Live || given[0].Withdrawn == nil {
		t.Fatalf("attest ls after withdrawal: %+v %v", given, err)
	}
}

// An attestation counts until it expires, and not a moment after.
func TestAttestationExpires(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.attestAll(t, w.now().Add(time.Hour))
	prove(t, w.doc, w.pat, w.doc.keys.ID)
	if err := w.pat.repo.Trust(ctx, w.auth.keys.ID); err != nil {
		t.Fatal(err)
	}
	rp := roleOf(t, w.pat, w.doc.keys.ID)
	if !rp.Verified || !rp.Until.Equal(w.now().Add(time.Hour)) {
		t.Fatalf("before expiry: %+v", rp)
	}
	w.advance(time.Hour)
	if rp := roleOf(t, w.pat, w.doc.keys.ID); rp.Verified || rp.Rule != RuleRoleExpired {
		t.Fatalf("after expiry: %+v", rp)
	}
}

// A self-declared clinician never verifies, whoever is trusted.
func TestSelfDeclaredClinicianNeverVerified(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.attestAll(t, time.Time{})
	mal := newParty(t, "Dr Mal", protocol.RoleClinician)
	send(t, mal, w.pat)
	send(t, w.auth, w.pat)
	if err := w.pat.repo.Trust(ctx, w.auth.keys.ID); err != nil {
		t.Fatal(err)
	}
	if rp := roleOf(t, w.pat, mal.keys.ID); rp.Verified || rp.Rule != RuleRoleDeclared {
		t.Fatalf("self-declared: %+v", rp)
	}
	// A patient's role is never verified either (there is nothing to).
	if rp := roleOf(t, w.pat, w.pat.keys.ID); rp.Verified || rp.Rule != RuleRoleNotAttests {
		t.Fatalf("patient: %+v", rp)
	}
}

// forgeAttest writes an attestation straight onto p's chain, past Attest's
// checks.
func forgeAttest(t *testing.T, p *party, to protocol.AccountID, role protocol.Role) {
	t.Helper()
	a := &protocol.Attestation{To: keyOf(to), Role: role}
	p.repo.mu.Lock()
	defer p.repo.mu.Unlock()
	if _, err := p.repo.appendBlock(context.Background(), p.keys, []protocol.Entry{protocol.NewEntry(a)}); err != nil {
		t.Fatal(err)
	}
}

// The attacks: each writes what an honest node's Attest refuses, and the
// verifier's policy refuses it too.
func TestAttestationAttacks(t *testing.T) {
	ctx := context.Background()

	t.Run("non-authority attests a clinic", func(t *testing.T) {
		w := newWorld(t)
		mal := newParty(t, "Mal", protocol.RolePatient)
		fake := newParty(t, "Fake Clinic", protocol.RoleClinic)
		send(t, fake, mal)
		if _, err := mal.repo.Attest(ctx, mal.keys, fake.keys.ID, AttestOptions{Role: protocol.RoleClinic}); err == nil {
			t.Fatal("a patient's Attest of a clinic was accepted")
		}
		forgeAttest(t, mal, fake.keys.ID, protocol.RoleClinic)
		send(t, mal, w.pat)
		send(t, fake, w.pat)
		if err := w.pat.repo.Trust(ctx, mal.keys.ID); err == nil {
			t.Fatal("a patient was accepted as a trusted authority")
		}
		if rp := roleOf(t, w.pat, fake.keys.ID); rp.Verified || rp.Rule != RuleRoleAttester {
			t.Fatalf("clinic attested by a patient: %+v", rp)
		}
	})

	t.Run("clinic attests an authority", func(t *testing.T) {
		w := newWorld(t)
		w.attestAll(t, time.Time{})
		rogue := newParty(t, "Rogue Authority", protocol.RoleAuthority)
		fake := newParty(t, "Fake Clinic", protocol.RoleClinic)
		doc2 := newParty(t, "Dr Fake", protocol.RoleClinician)
		send(t, rogue, w.clinic)
		if _, err := w.clinic.repo.Attest(ctx, w.clinic.keys, rogue.keys.ID, AttestOptions{Role: protocol.RoleAuthority}); err == nil {
			t.Fatal("a clinic's Attest of an authority was accepted")
		}
		forgeAttest(t, w.clinic, rogue.keys.ID, protocol.RoleAuthority)
		forgeAttest(t, rogue, fake.keys.ID, protocol.RoleClinic)
		forgeAttest(t, fake, doc2.keys.ID, protocol.RoleClinician)
		for _, p := range []*party{w.auth, w.clinic, w.doc, rogue, fake, doc2} {
			send(t, p, w.pat)
		}
		if err := w.pat.repo.Trust(ctx, w.auth.keys.ID); err != nil {
			t.Fatal(err)
		}
		if rp := roleOf(t, w.pat, doc2.keys.ID); rp.Verified || rp.Rule != RuleRoleAttester {
			t.Fatalf("clinician under an authority a clinic attested: %+v", rp)
		}
		if rp := roleOf(t, w.pat, w.doc.keys.ID); !rp.Verified {
			t.Fatalf("the honest clinician lost the role: %+v", rp)
		}
	})

	t.Run("untrusted authority", func(t *testing.T) {
		w := newWorld(t)
		rogue := newParty(t, "Rogue Authority", protocol.RoleAuthority)
		send(t, w.clinic, rogue)
		if _, err := rogue.repo.Attest(ctx, rogue.keys, w.clinic.keys.ID, AttestOptions{Role: protocol.RoleClinic}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.clinic.repo.Attest(ctx, w.clinic.keys, w.doc.keys.ID, AttestOptions{Role: protocol.RoleClinician}); err != nil {
			t.Fatal(err)
		}
		send(t, rogue, w.clinic)
		send(t, w.auth, w.pat)
		if err := w.pat.repo.Trust(ctx, w.auth.keys.ID); err != nil {
			t.Fatal(err)
		}
		prove(t, w.clinic, w.pat, w.doc.keys.ID)
		if rp := roleOf(t, w.pat, w.doc.keys.ID); rp.Verified || rp.Rule != RuleRoleUntrusted {
			t.Fatalf("attested under an untrusted authority: %+v", rp)
		}
	})

	t.Run("wrong role", func(t *testing.T) {
		w := newWorld(t)
		w.attestAll(t, time.Time{})
		// The clinic attests a patient account as a clinician.
		if _, err := w.clinic.repo.Attest(ctx, w.clinic.keys, w.pat.keys.ID, AttestOptions{Role: protocol.RoleClinician}); err == nil {
			t.Fatal("attesting a patient as a clinician was accepted")
		}
		send(t, w.pat, w.clinic)
		forgeAttest(t, w.clinic, w.pat.keys.ID, protocol.RoleClinician)
		send(t, w.clinic, w.pat)
		send(t, w.auth, w.pat)
		if err := w.pat.repo.Trust(ctx, w.auth.keys.ID); err != nil {
			t.Fatal(err)
		}
		rp, err := w.pat.repo.VerifiedRole(ctx, w.pat.keys.ID, protocol.RoleClinician, w.now())
		if err != nil || rp.Verified || rp.Rule != RuleRoleMismatch {
			t.Fatalf("a patient attested as a clinician: %+v %v", rp, err)
		}
	})

	t.Run("loop of authorities", func(t *testing.T) {
		w := newWorld(t)
		a1 := newParty(t, "Authority One", protocol.RoleAuthority)
		a2 := newParty(t, "Authority Two", protocol.RoleAuthority)
		send(t, a2, a1)
		send(t, a1, a2)
		send(t, w.clinic, a1)
		for _, step := range []struct {
			by *party
			to protocol.AccountID
			r  protocol.Role
		}{{a1, a2.keys.ID, protocol.RoleAuthority}, {a2, a1.keys.ID, protocol.RoleAuthority}, {a1, w.clinic.keys.ID, protocol.RoleClinic}} {
			if _, err := step.by.repo.Attest(ctx, step.by.keys, step.to, AttestOptions{Role: step.r}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.clinic.repo.Attest(ctx, w.clinic.keys, w.doc.keys.ID, AttestOptions{Role: protocol.RoleClinician}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*party{a1, a2, w.clinic, w.doc, w.auth} {
			send(t, p, w.pat)
		}
		if err := w.pat.repo.Trust(ctx, w.auth.keys.ID); err != nil {
			t.Fatal(err)
		}
		if rp := roleOf(t, w.pat, w.doc.keys.ID); rp.Verified || rp.Rule != RuleRoleLoop {
			t.Fatalf("loop: %+v", rp)
		}
	})
}

// A role proof carries only what is public: the account's first block and
// clinic or authority chains. A patient's chain offered in a proof is not
// taken, and a patient's own node gives no proof of a contact it merely
// knows.
func TestRoleProofIsBounded(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.attestAll(t, time.Time{})
	other := newParty(t, "Other Patient", protocol.RolePatient)
	if _, err := other.repo.AddRecord(ctx, other.keys, NewRecord{Title: "note", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("private")}); err != nil {
		t.Fatal(err)
	}
	raws, err := other.repo.ChainBack(ctx, other.repo.mustHead(t, other.keys.ID), NoneHeld, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	changed, problems, err := w.pat.repo.ApplyRoleProof(ctx, w.doc.keys.ID, raws)
	if err != nil || len(changed) != 0 || len(problems) == 0 {
		t.Fatalf("a patient's chain was taken from a role proof: %v %v %v", changed, problems, err)
	}
	// The clinic knows the patient's chain but gives no proof of her.
	send(t, other, w.clinic)
	if raws, err := w.clinic.repo.RoleProofBlocks(ctx, other.keys.ID, nil); err != nil || len(raws) != 0 {
		t.Fatalf("proof of a patient: %d blocks, %v", len(raws), err)
	}
	// A node that holds the chains says so, and gets only what is newer.
	raws, err = w.doc.repo.RoleProofBlocks(ctx, w.doc.keys.ID, map[protocol.AccountID]uint64{w.doc.keys.ID: 0, w.clinic.keys.ID: 1, w.auth.keys.ID: 1})
	if err != nil || len(raws) != 0 {
		t.Fatalf("proof for a node holding everything: %d blocks, %v", len(raws), err)
	}
}

// The trust list: shipped defaults and configured authorities are listed
// with their source, can be removed (and stay removed) and added back.
func TestTrustList(t *testing.T) {
	ctx := context.Background()
	auth := newParty(t, "Authority", protocol.RoleAuthority)
	cfg := newParty(t, "Configured Authority", protocol.RoleAuthority)
	dir := t.TempDir()
	r, err := Open(ctx, dir, Options{Create: true, ShippedTrust: []protocol.AccountID{auth.keys.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetConfigTrust([]protocol.AccountID{"not-an-account"}); err == nil {
		t.Fatal("a bad configured ID was accepted")
	}
	list, err := r.TrustList(ctx)
	if err != nil || len(list) != 1 || list[0].Account != auth.keys.ID || list[0].Sources[0] != TrustShipped {
		t.Fatalf("after a bad SetConfigTrust the list changed, or shipped is missing: %+v %v", list, err)
	}
	if err := r.SetConfigTrust([]protocol.AccountID{cfg.keys.ID}); err != nil {
		t.Fatal(err)
	}
	trusted := func() map[protocol.AccountID]bool {
		s, err := r.trustedSet(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := trusted(); !s[auth.keys.ID] || !s[cfg.keys.ID] {
		t.Fatalf("shipped and configured not trusted: %v", s)
	}
	if err := r.Distrust(ctx, auth.keys.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.Distrust(ctx, auth.keys.ID); !errors.Is(err, ErrNotTrusted) {
		t.Fatalf("removing twice: %v", err)
	}
	r.Close()
	// The removal outlives a restart.
	r, err = Open(ctx, dir, Options{ShippedTrust: []protocol.AccountID{auth.keys.ID}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if s := trusted(); s[auth.keys.ID] {
		t.Fatal("a removed shipped authority came back after a restart")
	}
	list, _ = r.TrustList(ctx)
	if len(list) != 1 || !list[0].Removed {
		t.Fatalf("trust ls does not show the removed shipped authority: %+v", list)
	}
	// Adding back needs the chain (and the role authority).
	if err := r.Trust(ctx, auth.keys.ID); !errors.Is(err, ErrUnknownAccount) {
		t.Fatalf("trusting an unknown account: %v", err)
	}
	var buf bytes.Buffer
	if _, err := auth.repo.ExportCAR(ctx, &buf, auth.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ImportCAR(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	if err := r.Trust(ctx, auth.keys.ID); err != nil {
		t.Fatal(err)
	}
	if s := trusted(); !s[auth.keys.ID] {
		t.Fatal("added back, not trusted")
	}
	if err := r.Distrust(ctx, auth.keys.ID); err != nil {
		t.Fatal(err)
	}
	if s := trusted(); s[auth.keys.ID] {
		t.Fatal("removed again, still trusted")
	}
}

// A clinic's node lists its live clinicians matching a query; the asking
// node believes the names and roles only as far as the blocks prove them.
func TestDirectory(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.attestAll(t, time.Time{})
	nurse := newParty(t, "Nurse Ratched", protocol.RoleClinician)
	send(t, nurse, w.clinic)
	if _, err := w.clinic.repo.Attest(ctx, w.clinic.keys, nurse.keys.ID, AttestOptions{Role: protocol.RoleClinician, Department: "Psychiatry"}); err != nil {
		t.Fatal(err)
	}
	ans, err := w.clinic.repo.AnswerDirectory(ctx, "", "grey", 0)
	if err != nil || len(ans.Entries) != 1 || ans.Entries[0].Name != "Dr Grey" {
		t.Fatalf("query grey: %+v %v", ans, err)
	}
	if all, _ := w.clinic.repo.AnswerDirectory(ctx, "", "", 0); len(all.Entries) != 2 {
		t.Fatalf("empty query: %d entries", len(all.Entries))
	}
	if dept, _ := w.clinic.repo.AnswerDirectory(ctx, "", "PSYCH", 0); len(dept.Entries) != 1 || dept.Entries[0].Name != "Nurse Ratched" {
		t.Fatalf("query by department: %+v", dept.Entries)
	}
	res, problems, err := w.pat.repo.ApplyDirectory(ctx, ans)
	if err != nil || len(problems) > 0 || len(res) != 1 {
		t.Fatalf("apply: %+v %v %v", res, problems, err)
	}
	if res[0].Proof.Verified || res[0].Name != "Dr Grey" || res[0].ClinicName != "St Mary's" {
		t.Fatalf("before trust: %+v", res[0])
	}
	if err := w.pat.repo.Trust(ctx, w.auth.keys.ID); err != nil {
		t.Fatal(err)
	}
	res, _, _ = w.pat.repo.ApplyDirectory(ctx, ans)
	if !res[0].Proof.Verified || res[0].Department != "Cardiology" || !res[0].Emergency {
		t.Fatalf("after trust: %+v", res[0])
	}
	// A lying answer (another name, a department the chain does not say)
	// changes nothing of what the asker shows.
	lie := *ans
	lie.Entries = []protocol.DirectoryEntry{ans.Entries[0]}
	lie.Entries[0].Name, lie.Entries[0].Department = "Dr House", "Diagnostics"
	res, _, _ = w.pat.repo.ApplyDirectory(ctx, &lie)
	if res[0].Name != "Dr Grey" || res[0].Department != "Cardiology" {
		t.Fatalf("a lying answer was believed: %+v", res[0])
	}
	// Withdrawn: no longer listed, and the proof says so.
	if _, err := w.clinic.repo.Unattest(ctx, w.clinic.keys, w.doc.keys.ID); err != nil {
		t.Fatal(err)
	}
	ans2, _ := w.clinic.repo.AnswerDirectory(ctx, "", "grey", 0)
	if len(ans2.Entries) != 0 {
		t.Fatalf("withdrawn clinician listed: %+v", ans2.Entries)
	}
	w.pat.repo.ApplyDirectory(ctx, ans2)
	if rp := roleOf(t, w.pat, w.doc.keys.ID); rp.Verified {
		t.Fatalf("withdrawn clinician still verified: %+v", rp)
	}
}

// The chain log says what an attestation and a withdrawal are.
func TestAttestationLog(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.attestAll(t, w.now().Add(time.Hour))
	if _, err := w.clinic.repo.Unattest(ctx, w.clinic.keys, w.doc.keys.ID); err != nil {
		t.Fatal(err)
	}
	entries, err := w.clinic.repo.Log(ctx, w.clinic.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Summary)
	}
	all := strings.Join(got, "\n")
	if !strings.Contains(all, `as clinician, department "Cardiology", may use emergency access, until `) || !strings.Contains(all, "withdraw the attestation of Dr Grey") {
		t.Fatalf("log:\n%s", all)
	}
}

// verify rebuilds the attestation index from the attesters' chains: an
// attestation deleted from it, or one written into it that no chain
// makes, is reported and repaired, and the verdict follows the chain.
func TestVerifyRepairsAttestationIndex(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.attestAll(t, time.Time{})
	r := w.clinic.repo
	if err := r.Trust(ctx, w.auth.keys.ID); err != nil {
		t.Fatal(err)
	}
	if rp := roleOf(t, w.clinic, w.doc.keys.ID); !rp.Verified {
		t.Fatalf("not verified before the damage: %+v", rp)
	}
	// The clinic's own attestation of the doctor goes; a forged one of
	// the patient, as if the clinic had attested her, comes.
	if err := r.ds.Delete(ctx, keyAttest(w.clinic.keys.ID, w.doc.keys.ID)); err != nil {
		t.Fatal(err)
	}
	forged := attestEvent{Attester: w.clinic.keys.ID, To: w.pat.keys.ID, Role: protocol.RoleClinician, Via: EntryRef{Account: w.clinic.keys.ID, Block: "forged", Seq: 1}}
	if err := putJSON(ctx, r.ds, keyAttest(w.clinic.keys.ID, w.pat.keys.ID), forged); err != nil {
		t.Fatal(err)
	}
	if err := r.ds.Put(ctx, keyAttestBy(w.pat.keys.ID, w.clinic.keys.ID), nil); err != nil {
		t.Fatal(err)
	}
	if rp := roleOf(t, w.clinic, w.doc.keys.ID); rp.Verified {
		t.Fatalf("still verified with the attestation gone from the index: %+v", rp)
	}
	mustVerifyProblems(t, w.clinic, "attestation index differs from the chain for "+string(w.doc.keys.ID),
		"attestation index holds an attestation of "+string(w.pat.keys.ID))
	mustVerify(t, w.clinic) // repaired: clean now
	if rp := roleOf(t, w.clinic, w.doc.keys.ID); !rp.Verified {
		t.Fatalf("not verified after the repair: %+v", rp)
	}
	if found, err := getJSON(ctx, r.ds, keyAttest(w.clinic.keys.ID, w.pat.keys.ID), &attestEvent{}); err != nil || found {
		t.Fatalf("the forged attestation is still in the index (%v)", err)
	}
}
