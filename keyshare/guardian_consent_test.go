package keyshare

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// acceptAs has g accept ward's appointment on g's repo, and sends g's
// chain to the repos of to (so that they see the accept).
func acceptAs(t *testing.T, g *party, ward protocol.AccountID, to ...*party) {
	t.Helper()
	if _, _, err := g.repo.AcceptWard(context.Background(), g.keys, ward); err != nil {
		t.Fatalf("%s accepts %s: %v", g.keys.ID, ward, err)
	}
	for _, p := range to {
		send(t, g, p)
	}
}

// A stranger appoints Gail guardian and relays requests to her node: the
// offer is listed as pending, her node refuses the relayed request (with
// the reason), will not act for the stranger, and does not serve Gail's
// chain to the stranger's node on that ground; the stranger's own node,
// holding no accept, does not relay to her either. Accepting opens all
// of it; resigning closes it again (but for her chain, which Wanda's node
// needs to learn of the resignation).
func TestStrangerAppointsGuardian(t *testing.T) {
	ctx := context.Background()
	s := newRelayScene(t) // Wanda appointed Gail; Gail has not accepted
	wanda, gail := s.wanda.keys.ID, s.gail.keys.ID

	_, wards, err := s.gail.repo.Guardians(ctx, gail)
	if err != nil || len(wards) != 1 || wards[0].Consent != ConsentPending || wards[0].ConsentRule != RuleGuardianNotAccepted {
		t.Fatalf("Gail's offers: %+v %v", wards, err)
	}
	mine, _, _ := s.wanda.repo.Guardians(ctx, wanda)
	if len(mine) != 1 || mine[0].Consent != ConsentPending {
		t.Fatalf("Wanda's guardians before the accept: %+v", mine)
	}
	q := s.ask(t, "check-up")
	if r := relaysTo(t, s.wanda, gail); len(r) != 0 {
		t.Fatalf("Wanda's node relays to a guardian that has not accepted: %+v", r)
	}
	// Wanda's node (modified) relays anyway: Gail's refuses, and says why.
	raw := rawRequest(t, s.wanda, q.ID)
	if _, err := s.gail.repo.ReceiveRequest(ctx, raw.Message, raw.Profile, "wanda-node"); err == nil || !strings.Contains(err.Error(), "has not accepted") {
		t.Fatalf("Gail's node took a request relayed for a ward she did not accept: %v", err)
	}
	if err := s.gail.repo.MayActFor(ctx, gail, wanda, protocol.RightGrant); !errors.Is(err, ErrNotGuardian) {
		t.Fatalf("Gail may act before accepting: %v", err)
	}
	if _, err := s.gail.repo.GrantForWard(ctx, s.gail.keys, wanda, []cid.Cid{s.note}, s.cole.keys.ID, time.Time{}); !errors.Is(err, ErrNotGuardian) {
		t.Fatalf("Gail grants for a ward before accepting: %v", err)
	}
	if d := chainServed(t, s.gail, gail, s.wanda); d.Allow {
		t.Fatalf("Gail's chain served to Wanda's node before the accept: %+v", d)
	}

	acceptAs(t, s.gail, wanda, s.wanda)
	if err := s.gail.repo.MayActFor(ctx, gail, wanda, protocol.RightApprove); err != nil {
		t.Fatalf("after the accept: %v", err)
	}
	if d := chainServed(t, s.gail, gail, s.wanda); !d.Allow || d.Rule != RuleChainGuardian {
		t.Fatalf("Gail's chain to Wanda's node after the accept: %+v", d)
	}
	if r := relaysTo(t, s.wanda, gail); len(r) != 1 {
		t.Fatalf("Wanda's node, holding the accept, relays: %+v", r)
	}
	if _, err := s.gail.repo.ReceiveRequest(ctx, raw.Message, raw.Profile, "wanda-node"); err != nil {
		t.Fatalf("a relayed request after the accept: %v", err)
	}
	if _, _, err := s.gail.repo.AcceptWard(ctx, s.gail.keys, wanda); !errors.Is(err, ErrConsent) {
		t.Fatalf("accepting twice: %v", err)
	}

	// Gail resigns: nothing counts on her side any more.
	if _, _, err := s.gail.repo.DeclineWard(ctx, s.gail.keys, wanda); err != nil {
		t.Fatal(err)
	}
	if err := s.gail.repo.MayActFor(ctx, gail, wanda, protocol.RightApprove); !errors.Is(err, ErrNotGuardian) || !strings.Contains(err.Error(), "declined") {
		t.Fatalf("after resigning: %v", err)
	}
	// Wanda's node is still served Gail's chain, to learn of the
	// resignation (guardian/resigned).
	if d := chainServed(t, s.gail, gail, s.wanda); !d.Allow || d.Rule != RuleChainGuardian {
		t.Fatalf("Gail's chain to Wanda's node after resigning: %+v", d)
	}
	if _, _, err := s.gail.repo.DeclineWard(ctx, s.gail.keys, wanda); !errors.Is(err, ErrConsent) {
		t.Fatalf("declining twice: %v", err)
	}
	// Mal never appointed Gail: there is nothing to answer.
	if _, _, err := s.gail.repo.AcceptWard(ctx, s.gail.keys, s.mal.keys.ID); !errors.Is(err, ErrNotGuardian) {
		t.Fatalf("accepting an appointment nobody made: %v", err)
	}
}

// An accepted ward's new appointment: narrowed rights keep the accept;
// widened rights (or a later end) wait for a new one, on the guardian's
// node and on the ward's.
func TestReappointmentConsent(t *testing.T) {
	ctx := context.Background()
	s := newRelayScene(t, protocol.RightRead, protocol.RightApprove)
	wanda, gail := s.wanda.keys.ID, s.gail.keys.ID
	acceptAs(t, s.gail, wanda, s.wanda)

	if _, err := s.wanda.repo.AppointGuardian(ctx, s.wanda.keys, gail, []protocol.GuardianRight{protocol.RightRead}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	if c, _ := s.gail.repo.consentTo(ctx, gail, wanda); c.Rule != RuleGuardianCarried {
		t.Fatalf("narrowed: %+v", c)
	}

	if _, err := s.wanda.repo.AppointGuardian(ctx, s.wanda.keys, gail, allRights, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s.sync(t)
	for _, p := range []*party{s.gail, s.wanda} {
		if err := p.repo.MayActFor(ctx, gail, wanda, protocol.RightApprove); !errors.Is(err, ErrNotGuardian) || !strings.Contains(err.Error(), "new accept") {
			t.Fatalf("%s's repo: widened rights count without a new accept: %v", p.keys.ID, err)
		}
	}
	_, wards, _ := s.gail.repo.Guardians(ctx, gail)
	if len(wards) == 0 || wards[0].Consent != ConsentPending || wards[0].ConsentRule != RuleGuardianWidened {
		t.Fatalf("the widened offer is not pending: %+v", wards)
	}
	acceptAs(t, s.gail, wanda, s.wanda)
	for _, p := range []*party{s.gail, s.wanda} {
		if err := p.repo.MayActFor(ctx, gail, wanda, protocol.RightGrant); err != nil {
			t.Fatalf("%s's repo after the new accept: %v", p.keys.ID, err)
		}
	}
}

// chainServed decides whether owner's repo serves a block of id's chain
// to a node acting for peer.
func chainServed(t *testing.T, owner *party, id protocol.AccountID, peer *party) Decision {
	t.Helper()
	ctx := context.Background()
	pid := newPeerID(t)
	if _, err := peer.repo.SetDevice(ctx, peer.keys, pid, "laptop", false); err != nil {
		t.Fatal(err)
	}
	send(t, peer, owner)
	d, err := owner.repo.MayServe(context.Background(), pid, owner.repo.mustHead(t, id))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// rawRequest returns request id as p's inbox holds it: the requester's
// signed message and profile, as a relay sends them.
func rawRequest(t *testing.T, p *party, id string) Outgoing {
	t.Helper()
	e, found, err := p.repo.getRequest(context.Background(), Inbox, id)
	if err != nil || !found {
		t.Fatalf("request %s in %s's inbox: %v %v", id, p.keys.ID, found, err)
	}
	return Outgoing{Kind: protocol.ReqFrameRequest, ID: id, Message: e.Raw, Profile: e.Profile}
}
