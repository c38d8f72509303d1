package keyshare

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// The attack walk over the rules of people who act for others: for each
// rule, the ways around it the other attack tests did not try. Each case
// says what the rule must decide; the fixes the walk led to have their
// rows in the policy table as well.

// gm is gp's own guardian (a guardian of the guardian); g2 a second
// guardian of pat's.
var (
	gm = testAccount(6)
	g2 = testAccount(7)
)

func TestGuardianAttackWalk(t *testing.T) {
	base := func() *facts { return newFacts().claim(pat, pat, 1).appoint(pat, gp, 2, 3, 0) }
	cases := []struct {
		name  string
		x     *facts
		who   protocol.AccountID
		reads bool
		rule  Rule
	}{
		// gp's chain appoints gm; gm acts for pat, or for gp on pat's
		// record: neither is an act of pat's guardian.
		{"a guardian of the guardian, naming the ward", base().appoint(gp, gm, 5, 1, 0).wardGrant(gm, pat, doc, 4), doc, false, RuleReadNone},
		{"a guardian of the guardian, naming the guardian", base().appoint(gp, gm, 5, 1, 0).wardGrant(gm, gp, doc, 4), doc, false, RuleReadNone},
		// gp's grant names gp's ward gm... on pat's record
		{"the guardian's ward's appointment replayed for pat", base().appoint(gm, gp, 5, 1, 0).wardGrant(gp, gm, doc, 4), doc, false, RuleReadNone},
		// pat removes g2: gp's span is not cut by it.
		{"a removal of another guardian", base().appoint(pat, g2, 3, 1, 0).unappoint(pat, g2, 4, 2).wardGrant(gp, pat, doc, 5), doc, true, RuleReadGuardian},
		// removed (cut at gp's block 5), appointed again from block 8:
		// acts in the gap stay cut, acts from 8 on count.
		{"an act in the gap between removal and re-appointment", base().unappoint(pat, gp, 4, 5).appoint(pat, gp, 6, 8, 0).wardGrant(gp, pat, doc, 6), doc, false, RuleReadNone},
		{"an act after the re-appointment", base().unappoint(pat, gp, 4, 5).appoint(pat, gp, 6, 8, 0).wardGrant(gp, pat, doc, 8), doc, true, RuleReadGuardian},
		// a removal earlier on pat's chain than the appointment cuts
		// nothing of it
		{"a removal before the appointment", newFacts().claim(pat, pat, 1).unappoint(pat, gp, 2, 9).appoint(pat, gp, 3, 3, 0).wardGrant(gp, pat, doc, 10), doc, true, RuleReadGuardian},
		// The guardian cannot revoke the ward herself, nor a record's
		// author, from what their own record entry gives them.
		{"the guardian revokes the ward", base().wardRevoke(gp, pat, pat, 4), pat, true, RuleReadAuthor}, // her own record
		{"the guardian revokes the ward from a record about her", newFacts().claim(doc, pat, 1).ack(pat, doc, 2, 1).appoint(pat, gp, 3, 3, 0).wardRevoke(gp, pat, pat, 4), pat, true, RuleReadSubject},
		{"the guardian revokes the author", newFacts().claim(doc, pat, 1).ack(pat, doc, 2, 1).appoint(pat, gp, 3, 3, 0).wardRevoke(gp, pat, doc, 4), doc, true, RuleReadAuthor},
		// A grant the ward made stays revoked by the guardian only while
		// the guardian's revocation is the later act.
		{"the ward's grant after a stranger's revocation", base().wardRevoke(mal, pat, doc, 4).grant(pat, doc, 5, 0), doc, true, RuleReadGrantee},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.x.eval()[0]
			d := readDecision(a, tc.who)
			if d.Allow != tc.reads || d.Rule != tc.rule {
				t.Fatalf("%s: %+v, want allow=%v rule %s (problems %v)", tc.who, d, tc.reads, tc.rule, a.Problems)
			}
		})
	}

	// until, to the millisecond: an act dated one tick before counts, one
	// dated at it does not (the ward's "until" is exclusive).
	sp := newFacts().appoint(pat, gp, 2, 3, 5000).f.guardians[pat]
	at := func(ms int64) Decision {
		d, _ := guardianAct(sp, EntryRef{Account: gp, Block: ref(gp, 4).Block, Seq: 4, Time: ms}, protocol.RightGrant)
		return d
	}
	if d := at(4999); !d.Allow {
		t.Errorf("an act one millisecond before until: %+v", d)
	}
	if d := at(5000); d.Allow || d.Rule != RuleGuardianUntil {
		t.Errorf("an act exactly at until: %+v", d)
	}
	// Exactly at the removal's cut and at the span's first block.
	sp = newFacts().appoint(pat, gp, 2, 3, 0).unappoint(pat, gp, 4, 6).f.guardians[pat]
	for seq, want := range map[uint64]Rule{2: RuleGuardianEarly, 3: RuleGuardianAct, 5: RuleGuardianAct, 6: RuleGuardianRemoved} {
		if d, _ := guardianAct(sp, ref(gp, seq), protocol.RightGrant); d.Rule != want {
			t.Errorf("act in gp's block %d: %+v, want %s", seq, d, want)
		}
	}
	// A removed guardian's act takes effect no later than the removal,
	// whatever date it bears.
	if _, eff := guardianAct(sp, EntryRef{Account: gp, Seq: 5, Time: 1 << 50}, protocol.RightGrant); eff != ref(pat, 4).Time {
		t.Errorf("a future-dated act of a removed guardian takes effect at %d, not at the removal (%d)", eff, ref(pat, 4).Time)
	}
}

func TestRecoveryAttackWalk(t *testing.T) {
	setup := recoverySetupFacts(2) // doc, gp, #5
	link := protocol.NewLink(setupCID)
	// pat recovered once to newKey: the approvals of that recovery, in
	// a thief's hands, must not make a second one.
	after := signerFacts{Account: keyOf(pat), Current: newKey, Retired: [][]byte{keyOf(pat)}, Recovery: setup}
	first := &protocol.Succession{Key: newKey, Request: requestID,
		Approvals: []protocol.RecoveryApproval{approval(t, 2, newKey, requestID, link), approval(t, 4, newKey, requestID, link)}}
	for name, b := range map[string]*protocol.Block{
		"replayed, signed by the thief's key":     signedBy(otherKey, first),
		"replayed, to the key that signs now":     signedBy(newKey, first),
		"replayed, renamed to the thief's key":    signedBy(otherKey, &protocol.Succession{Key: otherKey, Request: requestID, Approvals: first.Approvals}),
		"signed by the retired account key":       signedBy(keyOf(pat), &protocol.Succession{Key: otherKey}),
		"back to the retired account key":         signedBy(keyOf(pat), &protocol.Succession{Key: keyOf(pat), Request: requestID, Approvals: first.Approvals}),
		"a bad approval, then the same contact's": recoveryWithApprovals(otherKey, badApproval(t, 2, otherKey, link), approval(t, 2, otherKey, requestID, link)),
	} {
		t.Run(name, func(t *testing.T) {
			if d := blockSigner(after, b); d.Allow {
				t.Fatalf("allowed: %+v", d)
			}
		})
	}
	// The thief holds pat's retired account key and a setup names pat
	// herself: that key approves nothing.
	self := selfNamingSetup()
	after.Recovery = self
	b := recoveryWithApprovals(otherKey, approval(t, 1, otherKey, requestID, link), approval(t, 4, otherKey, requestID, link))
	if d := blockSigner(after, b); d.Allow || d.Rule != RuleRecoveryTooFew {
		t.Fatalf("pat's own key approving her recovery: %+v", d)
	}
	// The same block with a real second contact passes: the refusal
	// above is the self-approval's.
	b = recoveryWithApprovals(otherKey, approval(t, 2, otherKey, requestID, link), approval(t, 4, otherKey, requestID, link))
	if d := blockSigner(after, b); !d.Allow {
		t.Fatalf("two contacts' approvals: %+v", d)
	}
	// Facts no valid setup can give (a contact listed twice, a threshold
	// above the contacts) still count each contact once.
	twice := &recoveryFacts{Via: setup.Via, Threshold: 2, Contacts: [][]byte{keyOf(doc), keyOf(doc)}}
	if d := recoveryApproved(keyOf(pat), twice, &protocol.Succession{Key: otherKey, Request: requestID,
		Approvals: []protocol.RecoveryApproval{approval(t, 2, otherKey, requestID, link), approval(t, 2, otherKey, requestID, link)}}, nil, false); d.Allow {
		t.Fatalf("one contact listed twice counted twice: %+v", d)
	}
	high := &recoveryFacts{Via: setup.Via, Threshold: 4, Contacts: setup.Contacts}
	if d := recoveryApproved(keyOf(pat), high, &protocol.Succession{Key: otherKey, Request: requestID,
		Approvals: []protocol.RecoveryApproval{approval(t, 2, otherKey, requestID, link), approval(t, 4, otherKey, requestID, link), approval(t, 5, otherKey, requestID, link)}}, nil, false); d.Allow {
		t.Fatalf("a threshold above the contacts was reached: %+v", d)
	}
}

// recoveryWithApprovals is pat's block signed by key holding a recovery
// succession to key with the approvals given.
func recoveryWithApprovals(key []byte, approvals ...protocol.RecoveryApproval) *protocol.Block {
	return signedBy(key, &protocol.Succession{Key: key, Request: requestID, Approvals: approvals})
}

// badApproval is contact n's approval of key with a broken signature.
func badApproval(t *testing.T, n byte, key []byte, setup protocol.Link) protocol.RecoveryApproval {
	t.Helper()
	a := approval(t, n, key, requestID, setup)
	a.Sig = append([]byte(nil), a.Sig...)
	a.Sig[0] ^= 1
	return a
}

func TestRoleAttackWalk(t *testing.T) {
	clinician := func(x *roles) RoleProof { return x.verify(cln, protocol.RoleClinician) }
	// auth's own attestation of the clinic withdrawn or expired: the
	// clinician under it is no longer verified.
	for name, x := range map[string]*roles{
		"the clinic's attestation withdrawn": standard().edit(func(x *roles) { x.f.attests[clinic] = nil }).attest(auth, clinic, "", 0),
		"the clinic's attestation expired":   standard().edit(func(x *roles) { x.f.attests[clinic] = nil }).attest(auth, clinic, protocol.RoleClinic, tNow.UnixMilli()),
		// a clinic attests itself as the clinician's attester's attester
		"the clinic attests itself": standard().edit(func(x *roles) { x.f.attests[clinic] = nil }).attest(clinic, clinic, protocol.RoleClinic, 0),
		// the clinician attests the clinic that attests it
		"a loop through the clinician": standard().edit(func(x *roles) { x.f.attests[clinic] = nil }).attest(cln, clinic, protocol.RoleClinic, 0),
	} {
		t.Run(name, func(t *testing.T) {
			if p := clinician(x); p.Verified {
				t.Fatalf("verified: %+v", p)
			}
		})
	}
	// Emergency access comes from the clinician's own attestation only:
	// a clinic attested "for emergencies" does not pass it down.
	x := standard().edit(func(x *roles) {
		x.f.attests[clinic][0].Emergency = true
	})
	if p := clinician(x); !p.Verified || p.Emergency {
		t.Fatalf("emergency flag passed down from the clinic's attestation: %+v", p)
	}
	x.f.attests[cln][0].Emergency = true
	if p := clinician(x); !p.Verified || !p.Emergency {
		t.Fatalf("the clinician's own emergency attestation: %+v", p)
	}
	// An expired emergency attestation beside a live plain one: verified,
	// without emergency access.
	clinic2 := testAccount(25)
	x = standard().declare(clinic2, protocol.RoleClinic).attest(auth, clinic2, protocol.RoleClinic, 0).attest(clinic2, cln, protocol.RoleClinician, 0)
	x.f.attests[cln][0].Emergency, x.f.attests[cln][0].Expires = true, tNow.Add(-time.Minute).UnixMilli()
	if p := clinician(x); !p.Verified || p.Emergency {
		t.Fatalf("an expired emergency attestation still counts: %+v", p)
	}
}

// The clinician's side of a 2-of-3 pack: one custodian's share counts
// once, however often it is sent or under whatever name, and shares
// given to one clinician open nothing for another.
func TestEmergencySharesCountedOnce(t *testing.T) {
	e := newEmergencyWorld(t)
	e.setup(t)
	shares, block := e.askAll(t, e.doc, RuleEmergencyShare, nil)
	by := map[protocol.AccountID]GivenShare{}
	for _, s := range shares {
		by[s.Custodian] = s
	}
	gina, clinic := by[e.gina.keys.ID], by[e.clinic.keys.ID]
	if gina.Share == nil || clinic.Share == nil {
		t.Fatalf("shares: %+v", shares)
	}
	open := func(k *Keys, given ...GivenShare) error {
		_, err := e.doc.repo.OpenEmergency(k, e.pat.keys.ID, block, given)
		return err
	}
	if err := open(e.doc.keys, gina, clinic); err != nil {
		t.Fatalf("two custodians' shares: %v", err)
	}
	asClinic := gina
	asClinic.Custodian = clinic.Custodian
	asClinicIndex := asClinic
	asClinicIndex.Index = clinic.Index
	for name, given := range map[string][]GivenShare{
		"one share twice": {gina, gina},
		"one share, and again under another custodian":     {gina, asClinic},
		"one share, and again as another custodian's slot": {gina, asClinicIndex},
	} {
		t.Run(name, func(t *testing.T) {
			if err := open(e.doc.keys, given...); err == nil {
				t.Fatal("opened with one custodian's share")
			}
		})
	}
	if err := open(e.plain.keys, gina, clinic); err == nil {
		t.Fatal("shares given to Dr Doc opened the pack for Dr Plain")
	}
}

// A guardian whose chain went through a succession acts with its new key
// only: its retired key (a thief's, say) cannot act for the ward, neither
// through the repo nor by a block forged on top of its chain.
func TestGuardianRetiredKeyCannotAct(t *testing.T) {
	ctx := context.Background()
	s := newGuardianScene(t)
	if _, err := s.kim.repo.AppointGuardian(ctx, s.kim.keys, s.mum.keys.ID, allRights, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	acceptAs(t, s.mum, s.kim.keys.ID)
	s.sync(t)
	g := s.forgedGrant(s.kim)
	key, _, err := s.mum.repo.RecordKey(ctx, s.mum.keys, s.rec)
	if err != nil {
		t.Fatal(err)
	}
	docInfo, err := s.mum.repo.Account(ctx, s.doc.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.Keys[0].Key, err = wrapKey(key, docInfo); err != nil {
		t.Fatal(err)
	}
	old := s.mum.keys
	nk, err := s.mum.repo.Succeed(ctx, old, nil, SuccessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.sync(t)

	if _, err := s.mum.repo.GrantForWard(ctx, old, s.kim.keys.ID, []cid.Cid{s.rec}, s.doc.keys.ID, time.Time{}); !errors.Is(err, ErrKeyRetired) {
		t.Fatalf("the repo acted for the ward with the retired key: %v", err)
	}
	head := s.mum.repo.mustHead(t, s.mum.keys.ID)
	hb, err := s.mum.repo.readBlock(ctx, head)
	if err != nil {
		t.Fatal(err)
	}
	link := protocol.NewLink(head)
	car := forgedCAR(t, s.mum, &protocol.Block{Seq: hb.Seq + 1, Prev: &link, Time: hb.Time, Entries: []protocol.Entry{protocol.NewEntry(g)}}, old.Sign)
	for _, v := range []*party{s.kim, s.doc} {
		if _, err := v.repo.ImportCAR(ctx, bytes.NewReader(car)); err == nil {
			t.Errorf("%s's repo took a wardgrant block signed by the guardian's retired key", v.keys.ID)
		}
		if _, d := s.docReads(t, v); d.Allow {
			t.Fatalf("the retired key's grant counts on %s: %+v", v.keys.ID, d)
		}
	}

	// The successor key acts, and every verifier names the guardian.
	s.mum.keys = nk
	if _, err := s.mum.repo.GrantForWard(ctx, nk, s.kim.keys.ID, []cid.Cid{s.rec}, s.doc.keys.ID, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	for _, v := range []*party{s.kim, s.doc} {
		if rd, d := s.docReads(t, v); d.Rule != RuleReadGuardian || rd.Guardian != s.mum.keys.ID {
			t.Fatalf("the successor key's grant on %s: %+v %+v", v.keys.ID, d, rd)
		}
	}
}

// A clinician's retired account key (a thief's, after the clinician's
// succession) gets no share from a custodian that holds the chain naming
// the succession; the clinician's successor key cannot sign a request
// yet (the request names its signing key as the clinician) and is told so.
func TestEmergencyRetiredClinicianKey(t *testing.T) {
	ctx := context.Background()
	e := newEmergencyWorld(t)
	e.setup(t)
	old := e.doc.keys
	nk, err := e.doc.repo.Succeed(ctx, old, nil, SuccessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range e.custodians {
		send(t, e.doc, c)
	}
	e.askAll(t, e.doc, RuleEmergencyRetired, nil) // e.doc.keys is still the old key
	if _, err := e.doc.repo.NewEmergencyRequest(nk, e.pat.keys.ID, nil, "road accident"); err == nil || !strings.Contains(err.Error(), "successor key") {
		t.Fatalf("request signed by the successor key: %v", err)
	}
	// The refusal is recorded, for the patient to see.
	uses, err := e.gina.repo.EmergencyUses(ctx, e.pat.keys.ID)
	if err != nil || len(uses) == 0 || uses[0].Given || uses[0].Rule != RuleEmergencyRetired {
		t.Fatalf("the refused request is not recorded as such: %+v, %v", uses, err)
	}
}

// A custodian that rotated its age identity (a succession, a device
// removed) still opens the share sealed to its old one.
func TestEmergencyCustodianAfterRotation(t *testing.T) {
	ctx := context.Background()
	e := newEmergencyWorld(t)
	e.setup(t)
	nk, err := e.gina.repo.Succeed(ctx, e.gina.keys, nil, SuccessionOptions{RotateAge: true})
	if err != nil {
		t.Fatal(err)
	}
	if nk.Age.Recipient().String() == e.gina.keys.Age.Recipient().String() {
		t.Fatal("the succession kept the age identity")
	}
	e.gina.keys = nk
	raw := e.request(t, e.doc)
	ans := e.ask(t, e.doc, e.gina, raw)
	if !ans.Decision.Allow || len(ans.Shares) != 1 {
		t.Fatalf("the rotated custodian's answer: %+v (%d shares)", ans.Decision, len(ans.Shares))
	}
	// Its notice could not name it (notices name their signing key), so
	// none is queued; the use is kept here all the same.
	if pend, err := e.gina.repo.PendingEmergencyNotices(ctx); err != nil || len(pend) != 0 {
		t.Fatalf("notices queued by a successor key: %+v, %v", pend, err)
	}
	if uses, err := e.gina.repo.EmergencyUses(ctx, e.pat.keys.ID); err != nil || len(uses) != 1 || !uses[0].Given {
		t.Fatalf("the use is not kept: %+v, %v", uses, err)
	}
	other := e.ask(t, e.doc, e.clinic, raw)
	if _, err := e.doc.repo.OpenEmergency(e.doc.keys, e.pat.keys.ID, ans.Block, append(ans.Shares, other.Shares...)); err != nil {
		t.Fatalf("the rotated custodian's share does not open the pack: %v", err)
	}
}

// A notice signed with a custodian's retired key (a thief's, after the
// custodian's succession) is refused by the patient's node once it holds
// the custodian's chain naming the succession, as access requests are
// (only the key the chain names now counts, whenever it signed).
func TestEmergencyNoticeByRetiredKey(t *testing.T) {
	ctx := context.Background()
	e := newEmergencyWorld(t)
	e.setup(t)
	raw := e.request(t, e.doc)
	if ans := e.ask(t, e.doc, e.gina, raw); !ans.Decision.Allow {
		t.Fatal(ans.Decision)
	}
	pend, err := e.gina.repo.PendingEmergencyNotices(ctx)
	if err != nil || len(pend) != 1 {
		t.Fatalf("pending notices: %+v, %v", pend, err)
	}
	notice := pend[0].Notice
	if _, err := e.pat.repo.ReceiveEmergencyNotice(ctx, notice, "peer"); err != nil {
		t.Fatalf("the notice before the succession: %v", err)
	}
	if _, err := e.gina.repo.Succeed(ctx, e.gina.keys, nil, SuccessionOptions{}); err != nil {
		t.Fatal(err)
	}
	send(t, e.gina, e.pat)
	if _, err := e.pat.repo.ReceiveEmergencyNotice(ctx, notice, "peer"); err == nil || !strings.Contains(err.Error(), "retired") {
		t.Fatalf("a notice signed by the retired key: %v", err)
	}
}
