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

// Attacks on guardian consent (the attack review; rules guardian/accepted,
// guardian/not-accepted, serve/chain-guardian in policy.go). Each test is
// an attempt that must fail; what it shows is noted beside it.

// appointmentOf returns the CID of ward's chain block holding its latest
// appointment of guardian, as p's repo holds ward's chain.
func appointmentOf(t *testing.T, p *party, ward, guardian protocol.AccountID) cid.Cid {
	t.Helper()
	evs, err := p.repo.guardiansOf(context.Background(), ward)
	if err != nil {
		t.Fatal(err)
	}
	spans := guardianSpans(evs)
	i := latestSpan(spans, guardian)
	if i < 0 {
		t.Fatalf("%s never appointed %s in %s's repo", ward, guardian, p.keys.ID)
	}
	c, err := cid.Decode(spans[i].Appointed.Block)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// consentIn returns guardian's consent to ward's latest appointment of it
// as p's repo judges it.
func consentIn(t *testing.T, p *party, guardian, ward protocol.AccountID) Decision {
	t.Helper()
	d, err := p.repo.consentTo(context.Background(), guardian, ward)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// An accept replayed onto another ward, or onto another appointment:
// Gail's chain carries a wardaccept naming Mal as the ward with Wanda's
// appointment block, and one naming Wanda with Mal's. Neither counts on
// any repo (an answer binds the ward it names and that ward's block), so
// neither ward's node is served Gail's chain and neither relays to her.
// Held.
func TestConsentAttackReplayedAccept(t *testing.T) {
	ctx := context.Background()
	s := newRelayScene(t)
	wanda, gail, mal := s.wanda.keys.ID, s.gail.keys.ID, s.mal.keys.ID
	if _, err := s.mal.repo.AppointGuardian(ctx, s.mal.keys, gail, allRights, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	wandaAppt, malAppt := appointmentOf(t, s.gail, wanda, gail), appointmentOf(t, s.gail, mal, gail)
	force(t, s.gail, &protocol.WardAccept{WardConsent: protocol.WardConsent{Ward: keyOf(mal), Appointment: protocol.NewLink(wandaAppt)}})
	force(t, s.gail, &protocol.WardAccept{WardConsent: protocol.WardConsent{Ward: keyOf(wanda), Appointment: protocol.NewLink(malAppt)}})
	s.sync(t)
	for _, p := range []*party{s.gail, s.wanda, s.mal, s.cole} {
		for _, ward := range []protocol.AccountID{wanda, mal} {
			if d := consentIn(t, p, gail, ward); d.Allow || d.Rule != RuleGuardianNotAccepted {
				t.Errorf("%s's repo: a replayed accept counts for %s: %+v", p.keys.ID, ward, d)
			}
		}
	}
	for _, ward := range []*party{s.wanda, s.mal} {
		if d := chainServed(t, s.gail, gail, ward); d.Allow {
			t.Errorf("Gail's chain served to %s's node on a replayed accept: %+v", ward.keys.ID, d)
		}
	}
	s.ask(t, "check-up")
	if r := relaysTo(t, s.wanda, gail); len(r) != 0 {
		t.Errorf("Wanda's node relays to Gail on a replayed accept: %+v", r)
	}
	// Her real accept of Wanda's appointment counts for Wanda only.
	acceptAs(t, s.gail, wanda, s.wanda, s.mal)
	if d := consentIn(t, s.wanda, gail, wanda); !d.Allow {
		t.Errorf("the real accept: %+v", d)
	}
	if d := consentIn(t, s.mal, gail, mal); d.Allow {
		t.Errorf("Gail's accept of Wanda counts for Mal: %+v", d)
	}
}

// An accept signed by Gail's retired key (a removed device's, or a
// thief's, after her succession): every verifier refuses the block
// (chain/signer-retired), so the appointment stays an offer. Her accept
// under the new key counts. Held.
func TestConsentAttackRetiredKeyAccept(t *testing.T) {
	ctx := context.Background()
	s := newRelayScene(t)
	wanda, gail := s.wanda.keys.ID, s.gail.keys.ID
	old := s.gail.keys
	next, err := s.gail.repo.Succeed(ctx, old, nil, SuccessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	send(t, s.gail, s.wanda)
	st, err := s.wanda.repo.state(ctx, gail)
	if err != nil {
		t.Fatal(err)
	}
	link := protocol.NewLink(st.head())
	appt := appointmentOf(t, s.wanda, wanda, gail)
	forged := &protocol.Block{Seq: st.Seq + 1, Prev: &link, Time: st.Time + 1, Entries: []protocol.Entry{
		protocol.NewEntry(&protocol.WardAccept{WardConsent: protocol.WardConsent{Ward: keyOf(wanda), Appointment: protocol.NewLink(appt)}})}}
	raw, c, err := forged.Sign(old.Sign)
	if err != nil {
		t.Fatal(err)
	}
	var se *SignerError
	if err := s.wanda.repo.commitForTest(ctx, c, forged, raw); !errors.As(err, &se) || se.Decision.Rule != RuleSignerRetired {
		t.Fatalf("an accept by the retired key: %v", err)
	}
	if d := consentIn(t, s.wanda, gail, wanda); d.Allow {
		t.Fatalf("the retired key's accept counts: %+v", d)
	}
	if _, _, err := s.gail.repo.AcceptWard(ctx, next, wanda); err != nil {
		t.Fatal(err)
	}
	send(t, s.gail, s.wanda)
	if d := consentIn(t, s.wanda, gail, wanda); !d.Allow || d.Rule != RuleGuardianAccepted {
		t.Fatalf("the accept under the new key: %+v", d)
	}
}

// Gail accepted; Wanda removed her and appointed her again, with fewer
// rights (read, approve): the old accept does not survive the removal (a new offer), on
// her node and on Wanda's. Nothing of the appointment counts on Gail's
// side until she accepts anew. Held.
func TestConsentAttackAcceptAfterRemoval(t *testing.T) {
	ctx := context.Background()
	s := newAcceptedRelayScene(t)
	wanda, gail := s.wanda.keys.ID, s.gail.keys.ID
	if _, err := s.wanda.repo.RemoveGuardian(ctx, s.wanda.keys, gail); err != nil {
		t.Fatal(err)
	}
	if _, err := s.wanda.repo.AppointGuardian(ctx, s.wanda.keys, gail, []protocol.GuardianRight{protocol.RightRead, protocol.RightApprove}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	for _, p := range []*party{s.gail, s.wanda} {
		if err := p.repo.MayActFor(ctx, gail, wanda, protocol.RightApprove); !errors.Is(err, ErrNotGuardian) || !strings.Contains(err.Error(), "has not accepted") {
			t.Errorf("%s's repo: the accept survived the removal: %v", p.keys.ID, err)
		}
	}
	if d := chainServed(t, s.gail, gail, s.wanda); d.Allow {
		t.Errorf("Gail's chain served to Wanda's node after the removal and a new offer: %+v", d)
	}
	s.ask(t, "check-up")
	if r := relaysTo(t, s.wanda, gail); len(r) != 0 {
		t.Errorf("Wanda's node relays to Gail on the removed appointment's accept: %+v", r)
	}
}

// Wanda (a stranger to Gail) tries other roads to Gail's chain before
// any accept: granting Gail a record, writing a record about Gail, and
// asking for her profile. Only the profile is given (a local account's
// profile is public: its first block, by design); her head is not. Once
// Gail acknowledges Wanda's record about her, her chain is served on that
// ground (serve/chain-shared): an act of Gail's own. Held.
func TestConsentAttackChainOtherRoads(t *testing.T) {
	ctx := context.Background()
	s := newRelayScene(t)
	gail := s.gail.keys.ID
	if _, err := s.wanda.repo.Grant(ctx, s.wanda.keys, []cid.Cid{s.note}, gail, time.Time{}); err != nil {
		t.Fatal(err)
	}
	about, err := s.wanda.repo.AddRecord(ctx, s.wanda.keys, NewRecord{Title: "about Gail", Kind: protocol.KindNote, MediaType: "text/plain",
		Body: strings.NewReader("about Gail"), Subject: gail})
	if err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	if d := chainServed(t, s.gail, gail, s.wanda); d.Allow {
		t.Fatalf("Gail's chain served to Wanda's node by a grant or a record about her: %+v", d)
	}
	pid := newPeerID(t)
	if _, err := s.wanda.repo.SetDevice(ctx, s.wanda.keys, pid, "phone", false); err != nil {
		t.Fatal(err)
	}
	send(t, s.wanda, s.gail)
	if d, err := s.gail.repo.MayServeProfile(ctx, pid, gail); err != nil || !d.Allow || d.Rule != RuleProfilePublic {
		t.Fatalf("Gail's profile: %+v %v", d, err)
	}
	if d, err := s.gail.repo.MayServe(ctx, pid, s.gail.repo.mustHead(t, gail)); err != nil || d.Allow {
		t.Fatalf("Gail's head to Wanda's node with her profile: %+v %v", d, err)
	}
	if n, err := s.gail.repo.Acknowledge(ctx, s.gail.keys, about); err != nil || n != 1 {
		t.Fatalf("acknowledge: %d %v", n, err)
	}
	if d := chainServed(t, s.gail, gail, s.wanda); !d.Allow || d.Rule != RuleChainShared {
		t.Fatalf("after Gail acknowledged Wanda's record about her: %+v", d)
	}
}

// A stranger appoints Gail and floods her node with requests relayed for
// him: every one is refused before anything is stored (her inbox stays
// empty), each with the reason. Held.
func TestConsentAttackRelayFlood(t *testing.T) {
	ctx := context.Background()
	s := newRelayScene(t)
	for i := range 10 {
		q := s.ask(t, "flood "+string(rune('a'+i)))
		raw := rawRequest(t, s.wanda, q.ID)
		if _, err := s.gail.repo.ReceiveRequest(ctx, raw.Message, raw.Profile, "wanda-node"); err == nil || !strings.Contains(err.Error(), "has not accepted") {
			t.Fatalf("request %d taken: %v", i, err)
		}
	}
	in, _, err := s.gail.repo.Requests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(in) != 0 {
		t.Fatalf("Gail's inbox after the refused flood: %d requests", len(in))
	}
}

// importChain imports from's export of id's chain into to's repo and
// returns the import's error.
func importChain(t *testing.T, from *Repo, id protocol.AccountID, to *Repo) error {
	t.Helper()
	var buf bytes.Buffer
	if _, err := from.ExportCAR(context.Background(), &buf, id); err != nil {
		t.Fatal(err)
	}
	_, err := to.ImportCAR(context.Background(), &buf)
	return err
}

// A decline and an accept racing: Gail declines on her node while a
// second copy of her key (another device of hers, or a thief's) accepts
// at the same position of her chain. That is a fork: each verifier keeps
// the answer it saw first and refuses the other, keeping it as evidence
// (succession/fork); no verifier takes both, and Gail's own node goes by
// her decline. Held (as any fork is; SECURITY.md "Recovery of a lost
// key": recover when a key was stolen).
func TestConsentAttackDeclineAcceptRace(t *testing.T) {
	ctx := context.Background()
	s := newRelayScene(t)
	wanda, gail := s.wanda.keys.ID, s.gail.keys.ID
	racer, err := Open(ctx, t.TempDir(), Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer racer.Close()
	for _, id := range []protocol.AccountID{gail, wanda} {
		if err := importChain(t, s.gail.repo, id, racer); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := racer.AcceptWard(ctx, s.gail.keys, wanda); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.gail.repo.DeclineWard(ctx, s.gail.keys, wanda); err != nil {
		t.Fatal(err)
	}
	var fe *ForkError
	// Cole's repo sees the decline first, Wanda's the accept.
	if err := importChain(t, s.gail.repo, gail, s.cole.repo); err != nil {
		t.Fatal(err)
	}
	if err := importChain(t, racer, gail, s.cole.repo); !errors.As(err, &fe) {
		t.Fatalf("the racing accept after the decline: %v", err)
	}
	if err := importChain(t, racer, gail, s.wanda.repo); err != nil {
		t.Fatal(err)
	}
	if err := importChain(t, s.gail.repo, gail, s.wanda.repo); !errors.As(err, &fe) {
		t.Fatalf("the racing decline after the accept: %v", err)
	}
	for _, c := range []struct {
		p    *party
		want Rule
	}{{s.gail, RuleGuardianDeclined}, {s.cole, RuleGuardianDeclined}, {s.wanda, RuleGuardianAccepted}} {
		if d := consentIn(t, c.p, gail, wanda); d.Rule != c.want {
			t.Errorf("%s's repo: %+v, want %s (the first answer it saw)", c.p.keys.ID, d, c.want)
		}
	}
	if err := s.gail.repo.MayActFor(ctx, gail, wanda, protocol.RightApprove); !errors.Is(err, ErrNotGuardian) {
		t.Errorf("Gail's node acts after her decline: %v", err)
	}
	if d := chainServed(t, s.gail, gail, s.wanda); d.Allow {
		t.Errorf("Gail's node serves her chain to Wanda's after her decline: %+v", d)
	}
}

// Gail accepted Wanda's appointment, then resigned. Wanda's node learns
// it only from Gail's chain; if that stopped at the resignation, her node
// would go on showing Gail as her accepted guardian, relaying requests
// to her and telling her node of emergency uses. So a resignation is
// served to the ward's node (guardian/resigned); a decline of an offer
// never accepted still is not (the stranger learns nothing). Fixed.
func TestConsentAttackResignationUnseen(t *testing.T) {
	ctx := context.Background()
	s := newAcceptedRelayScene(t)
	wanda, gail := s.wanda.keys.ID, s.gail.keys.ID
	if _, _, err := s.gail.repo.DeclineWard(ctx, s.gail.keys, wanda); err != nil {
		t.Fatal(err)
	}
	d := chainServed(t, s.gail, gail, s.wanda)
	if !d.Allow || d.Rule != RuleChainGuardian {
		t.Fatalf("Gail's resignation is not served to Wanda's node: %+v", d)
	}
	send(t, s.gail, s.wanda)
	if c := consentIn(t, s.wanda, gail, wanda); c.Allow || c.Rule != RuleGuardianResigned {
		t.Fatalf("Wanda's node after the resignation: %+v", c)
	}
	mine, _, err := s.wanda.repo.Guardians(ctx, wanda)
	if err != nil || len(mine) != 1 || mine[0].Consent != ConsentDeclined {
		t.Fatalf("Wanda's guardians after the resignation: %+v %v", mine, err)
	}
	s.ask(t, "after the resignation")
	if r := relaysTo(t, s.wanda, gail); len(r) != 0 {
		t.Fatalf("Wanda's node relays to a guardian that resigned: %+v", r)
	}
	if _, _, err := s.gail.repo.DeclineWard(ctx, s.gail.keys, wanda); !errors.Is(err, ErrConsent) {
		t.Fatalf("resigning twice: %v", err)
	}

	// Mal's offer, declined without an accept: his node is not served.
	if _, err := s.mal.repo.AppointGuardian(ctx, s.mal.keys, gail, allRights, time.Time{}); err != nil {
		t.Fatal(err)
	}
	send(t, s.mal, s.gail)
	if _, _, err := s.gail.repo.DeclineWard(ctx, s.gail.keys, s.mal.keys.ID); err != nil {
		t.Fatal(err)
	}
	if d := chainServed(t, s.gail, gail, s.mal); d.Allow || d.Rule != RuleGuardianDeclined {
		t.Fatalf("Gail's chain to a stranger whose offer she declined: %+v", d)
	}
}
