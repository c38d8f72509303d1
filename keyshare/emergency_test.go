package keyshare

// Emergency access over real repos: a pack set up on the patient's chain,
// its block delivered to custodians' repos, requests signed by
// clinicians and decided by each custodian's repo, shares combined. The
// attacks: a non-emergency clinician, a self-declared one, a single
// custodian (alone and asking the others), an expired, ended or spent
// pack, a forged and a replayed request, a share taken by another
// account, a forged pack and a forged end, a forged notice.

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

const summaryText = `{"resourceType":"Bundle","type":"document","entry":[]}`

// emergencyWorld is the attest world plus custodians: gina (a guardian,
// a patient account), the clinic itself and Dr Hart (a clinician attested
// for emergencies, who is also a custodian); doc is an emergency
// clinician, plain a clinician attested without emergency access, and
// fake a self-declared clinician.
type emergencyWorld struct {
	*world
	gina, hart, plain, fake *party
	custodians              []*party
}

func newEmergencyWorld(t *testing.T) *emergencyWorld {
	t.Helper()
	ctx := context.Background()
	w := newWorld(t)
	opts := Options{Clock: func() time.Time { return w.now() }}
	e := &emergencyWorld{world: w,
		gina:  newPartyWith(t, "Gina", protocol.RolePatient, opts),
		hart:  newPartyWith(t, "Dr Hart", protocol.RoleClinician, opts),
		plain: newPartyWith(t, "Dr Plain", protocol.RoleClinician, opts),
		fake:  newPartyWith(t, "Dr Fake", protocol.RoleClinician, opts),
	}
	w.attestAll(t, time.Time{})
	for _, p := range []*party{e.hart, e.plain} {
		send(t, p, w.clinic)
		if _, err := w.clinic.repo.Attest(ctx, w.clinic.keys, p.keys.ID, AttestOptions{Role: protocol.RoleClinician, Emergency: p == e.hart}); err != nil {
			t.Fatal(err)
		}
		send(t, w.auth, p)
		send(t, w.clinic, p)
	}
	e.custodians = []*party{e.gina, w.clinic, e.hart}
	for _, c := range e.custodians {
		if c != w.clinic {
			send(t, w.auth, c)
		}
		if err := c.repo.Trust(ctx, w.auth.keys.ID); err != nil {
			t.Fatal(err)
		}
		send(t, c, w.pat)
	}
	w.pat.repo.SetNodeID("12D3KooWGzh3Dk9Ue7ceMDyv7Co5ybDXdEWnJ5S4zfM9pm4MhBnf")
	return e
}

// setup makes pat's 2-of-3 pack and delivers its blocks.
func (e *emergencyWorld) setup(t *testing.T) EmergencyPackInfo {
	t.Helper()
	ctx := context.Background()
	ids := []protocol.AccountID{e.gina.keys.ID, e.clinic.keys.ID, e.hart.keys.ID}
	info, err := e.pat.repo.SetupEmergency(ctx, e.pat.keys, EmergencySetup{Custodians: ids, Threshold: 2, Summary: []byte(summaryText)})
	if err != nil {
		t.Fatal(err)
	}
	e.deliver(t)
	return info
}

// deliver hands every pending deposit to its custodian's repo.
func (e *emergencyWorld) deliver(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	deps, err := e.pat.repo.EmergencyDeposits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps {
		for _, c := range e.custodians {
			if c.keys.ID != d.Custodian {
				continue
			}
			if _, err := c.repo.HoldEmergency(ctx, d.Raw); err != nil {
				t.Fatal(err)
			}
			if err := e.pat.repo.MarkDeposited(ctx, d.Block, d.Custodian); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ask sends asker's signed request raw to custodian c with asker's role
// proof and returns c's answer.
func (e *emergencyWorld) ask(t *testing.T, asker, c *party, raw []byte) EmergencyAnswer {
	t.Helper()
	ctx := context.Background()
	q, err := protocol.DecodeEmergencyRequest(raw)
	if err != nil {
		t.Fatal(err)
	}
	proof, err := asker.repo.RoleProofBlocks(ctx, q.ClinicianID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	role, err := c.repo.EmergencyRoleOf(ctx, q.ClinicianID(), proof, e.now())
	if err != nil {
		t.Fatal(err)
	}
	ans, err := c.repo.AnswerEmergency(ctx, raw, "peer", role, func(id protocol.AccountID) (*Keys, error) {
		if id == c.keys.ID {
			return c.keys.clone(), nil
		}
		return nil, errors.New("locked")
	})
	if err != nil {
		t.Fatal(err)
	}
	return ans
}

func (e *emergencyWorld) request(t *testing.T, asker *party) []byte {
	t.Helper()
	raw, err := asker.repo.NewEmergencyRequest(asker.keys, e.pat.keys.ID, nil, "unconscious after a road accident")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// askAll asks every custodian but skip and returns the shares and a pack
// block, failing if a custodian's decision is not want.
func (e *emergencyWorld) askAll(t *testing.T, asker *party, want Rule, skip *party) ([]GivenShare, []byte) {
	t.Helper()
	raw := e.request(t, asker)
	var shares []GivenShare
	var block []byte
	for _, c := range e.custodians {
		if c == skip {
			continue
		}
		ans := e.ask(t, asker, c, raw)
		if ans.Decision.Rule != want {
			t.Fatalf("%s asking %s: %+v, want %s", asker.keys.ID, c.keys.ID, ans.Decision, want)
		}
		shares = append(shares, ans.Shares...)
		if ans.Block != nil {
			block = ans.Block
		}
	}
	return shares, block
}

func TestEmergencyOpensWithThreshold(t *testing.T) {
	ctx := context.Background()
	e := newEmergencyWorld(t)
	info := e.setup(t)
	if info.Threshold != 2 || len(info.Custodians) != 3 || len(info.Notify) == 0 {
		t.Fatalf("pack: %+v", info)
	}
	shares, block := e.askAll(t, e.doc, RuleEmergencyShare, nil)
	if len(shares) != 3 {
		t.Fatalf("%d shares", len(shares))
	}
	// Any two shares open the summary; one does not.
	for i := range shares {
		pair := []GivenShare{shares[i], shares[(i+1)%3]}
		got, err := e.doc.repo.OpenEmergency(e.doc.keys, e.pat.keys.ID, block, pair)
		if err != nil || string(got.Summary) != summaryText {
			t.Fatalf("shares %d,%d: %v", i, (i+1)%3, err)
		}
		if _, err := e.doc.repo.OpenEmergency(e.doc.keys, e.pat.keys.ID, block, shares[i:i+1]); err == nil {
			t.Fatalf("one share (%d) opened the summary", i)
		}
	}
	// Every custodian recorded the use, with the reason.
	for _, c := range e.custodians {
		uses, err := c.repo.EmergencyUses(ctx, e.pat.keys.ID)
		if err != nil || len(uses) != 1 || !uses[0].Given || uses[0].Reason != "unconscious after a road accident" || uses[0].Clinician != e.doc.keys.ID {
			t.Fatalf("uses on %s: %+v, %v", c.keys.ID, uses, err)
		}
	}
	// The notices reach the patient's node, which keeps them; one
	// forged by a non-custodian is refused.
	var notice []byte
	for _, c := range e.custodians {
		pend, err := c.repo.PendingEmergencyNotices(ctx)
		if err != nil || len(pend) != 1 {
			t.Fatalf("pending notices on %s: %v, %v", c.keys.ID, pend, err)
		}
		if _, err := e.pat.repo.ReceiveEmergencyNotice(ctx, pend[0].Notice, "peer"); err != nil {
			t.Fatal(err)
		}
		notice = pend[0].Notice
		for _, p := range pend[0].Peers {
			if err := c.repo.NoticeDelivered(ctx, pend[0].ID, p); err != nil {
				t.Fatal(err)
			}
		}
		if pend, _ := c.repo.PendingEmergencyNotices(ctx); len(pend) != 0 {
			t.Fatalf("delivered notice still pending: %v", pend)
		}
	}
	uses, err := e.pat.repo.EmergencyUses(ctx, e.pat.keys.ID)
	if err != nil || len(uses) != 3 {
		t.Fatalf("patient's uses: %+v, %v", uses, err)
	}
	if uses[0].Reason != "unconscious after a road accident" || !uses[0].Given || uses[0].ReportedBy != "peer" {
		t.Fatalf("patient's view of a use: %+v", uses[0])
	}
	n, _, err := protocol.DecodeEmergencyNotice(notice)
	if err != nil {
		t.Fatal(err)
	}
	n.Sig = nil
	forged, err := n.Sign(e.fake.keys.Sign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pat.repo.ReceiveEmergencyNotice(ctx, forged, "peer"); err == nil || !strings.Contains(err.Error(), "no custodian") {
		t.Fatalf("forged notice: %v", err)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEmergencyAttacks(t *testing.T) {
	ctx := context.Background()
	e := newEmergencyWorld(t)
	e.setup(t)

	t.Run("non-emergency clinician", func(t *testing.T) { e.askAll(t, e.plain, RuleEmergencyNotAttested, nil) })
	t.Run("self-declared clinician", func(t *testing.T) { e.askAll(t, e.fake, RuleEmergencyNoRole, nil) })
	t.Run("stranger (a patient account)", func(t *testing.T) { e.askAll(t, e.gina, RuleEmergencyByCustodian, e.gina) })
	t.Run("single custodian", func(t *testing.T) {
		// Dr Hart is an emergency clinician and a custodian: the others
		// refuse it, and its own share alone opens nothing.
		e.askAll(t, e.hart, RuleEmergencyByCustodian, e.hart)
		raw := e.request(t, e.doc)
		ans := e.ask(t, e.doc, e.hart, raw)
		if _, err := e.doc.repo.OpenEmergency(e.doc.keys, e.pat.keys.ID, ans.Block, ans.Shares); err == nil {
			t.Fatal("one custodian's share opened the summary")
		}
	})
	t.Run("forged request", func(t *testing.T) {
		// Fake signs a request with its own key and recipient, then puts
		// doc's key in the clinician field.
		raw := e.request(t, e.fake)
		raw = bytes.Replace(raw, keyOf(e.fake.keys.ID), keyOf(e.doc.keys.ID), 1)
		if _, err := e.gina.repo.AnswerEmergency(ctx, raw, "peer", EmergencyRole{Verified: true, Emergency: true}, nil); err == nil || !strings.Contains(err.Error(), "bad signature") {
			t.Fatalf("forged request: %v", err)
		}
	})
	t.Run("replayed request, share re-requested by another account", func(t *testing.T) {
		raw := e.request(t, e.doc)
		first := e.ask(t, e.doc, e.gina, raw)
		if !first.Decision.Allow {
			t.Fatal(first.Decision)
		}
		// Whoever replays doc's request gets a refusal.
		if again := e.ask(t, e.doc, e.gina, raw); again.Decision.Rule != RuleEmergencyReplay || len(again.Shares) != 0 {
			t.Fatalf("replay: %+v", again.Decision)
		}
		// The share given to doc opens for doc only.
		if _, err := unseal(first.Shares[0].Share, e.fake.keys.Age, 64); err == nil {
			t.Fatal("another account decrypted doc's share")
		}
		// A stale request is refused and not even recorded.
		e.advance(6 * time.Minute)
		defer e.advance(-6 * time.Minute)
		if stale := e.ask(t, e.doc, e.clinic, raw); stale.Decision.Rule != RuleEmergencyStale {
			t.Fatalf("stale: %+v", stale.Decision)
		}
	})
	t.Run("forged pack and forged end", func(t *testing.T) {
		// Mal's own block claiming to end pat's pack, and a pack of its
		// own naming gina: both are kept under Mal's name only.
		packs, _ := e.pat.repo.EmergencyPacks(ctx, e.pat.keys.ID)
		id := mustHex(t, packs[0].ID)
		if _, err := e.fake.repo.appendBlock(ctx, e.fake.keys, []protocol.Entry{protocol.NewEntry(&protocol.EmergencyEnd{ID: id})}); err != nil {
			t.Fatal(err)
		}
		raw := e.lastBlock(t, e.fake)
		if _, err := e.gina.repo.HoldEmergency(ctx, raw); err == nil {
			t.Fatal("a stranger's end of a pack it does not have was kept")
		}
		e.askAll(t, e.doc, RuleEmergencyShare, nil)
	})
	t.Run("window over", func(t *testing.T) {
		e.advance(DefaultEmergencyWindow + time.Minute)
		defer e.advance(-DefaultEmergencyWindow - time.Minute)
		e.askAll(t, e.doc, RuleEmergencyWindow, nil)
	})
	t.Run("expired", func(t *testing.T) {
		e.advance(DefaultEmergencyValidity + time.Minute)
		defer e.advance(-DefaultEmergencyValidity - time.Minute)
		e.askAll(t, e.doc, RuleEmergencyExpired, nil)
	})
	t.Run("ended", func(t *testing.T) {
		ended, err := e.pat.repo.EndEmergency(ctx, e.pat.keys)
		if err != nil || len(ended) != 1 {
			t.Fatalf("%v, %v", ended, err)
		}
		e.deliver(t)
		e.askAll(t, e.doc, RuleEmergencyNoPack, nil) // no live pack left
		packs, _ := e.pat.repo.EmergencyPacks(ctx, e.pat.keys.ID)
		raw, err := e.doc.repo.NewEmergencyRequest(e.doc.keys, e.pat.keys.ID, mustHex(t, packs[0].ID), "asked by ID")
		if err != nil {
			t.Fatal(err)
		}
		// The end dropped the pack on every custodian's node.
		if ans := e.ask(t, e.doc, e.gina, raw); ans.Decision.Rule != RuleEmergencyNoPack {
			t.Fatalf("ended pack by ID: %+v", ans.Decision)
		}
		if _, err := e.pat.repo.EndEmergency(ctx, e.pat.keys); !errors.Is(err, ErrNoEmergencyPack) {
			t.Fatalf("ending twice: %v", err)
		}
	})
}

func (e *emergencyWorld) lastBlock(t *testing.T, p *party) []byte {
	t.Helper()
	ctx := context.Background()
	st, err := p.repo.state(ctx, p.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := p.repo.st.Blockstore().Get(ctx, st.head())
	if err != nil {
		t.Fatal(err)
	}
	return blk.RawData()
}

func TestEmergencySetupRefuses(t *testing.T) {
	ctx := context.Background()
	e := newEmergencyWorld(t)
	ids := []protocol.AccountID{e.gina.keys.ID, e.clinic.keys.ID}
	cases := map[string]EmergencySetup{
		"threshold 1":       {Custodians: ids, Threshold: 1, Summary: []byte("x")},
		"threshold above n": {Custodians: ids, Threshold: 3, Summary: []byte("x")},
		"one custodian":     {Custodians: ids[:1], Threshold: 1, Summary: []byte("x")},
		"self custodian":    {Custodians: []protocol.AccountID{e.gina.keys.ID, e.pat.keys.ID}, Threshold: 2, Summary: []byte("x")},
		"twice":             {Custodians: []protocol.AccountID{e.gina.keys.ID, e.gina.keys.ID}, Threshold: 2, Summary: []byte("x")},
		"unknown":           {Custodians: []protocol.AccountID{e.gina.keys.ID, e.fake.keys.ID}, Threshold: 2, Summary: []byte("x")},
		"past":              {Custodians: ids, Threshold: 2, Summary: []byte("x"), Until: e.now().Add(-time.Hour)},
		"empty":             {Custodians: ids, Threshold: 2},
		"too large":         {Custodians: ids, Threshold: 2, Summary: make([]byte, protocol.MaxEmergencySealed)},
	}
	for name, s := range cases {
		if _, err := e.pat.repo.SetupEmergency(ctx, e.pat.keys, s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if packs, _ := e.pat.repo.EmergencyPacks(ctx, e.pat.keys.ID); len(packs) != 0 {
		t.Fatalf("a refused setup left a pack: %+v", packs)
	}
	// A second setup ends the first in the same block.
	s := EmergencySetup{Custodians: ids, Threshold: 2, Summary: []byte("x")}
	if _, err := e.pat.repo.SetupEmergency(ctx, e.pat.keys, s); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pat.repo.SetupEmergency(ctx, e.pat.keys, s); err != nil {
		t.Fatal(err)
	}
	packs, _ := e.pat.repo.EmergencyPacks(ctx, e.pat.keys.ID)
	if len(packs) != 2 || packs[0].Ended || !packs[1].Ended {
		t.Fatalf("packs: %+v", packs)
	}
}

// The chain log says what a pack and its end are, in words.
func TestEmergencyInLog(t *testing.T) {
	e := newEmergencyWorld(t)
	e.setup(t)
	if _, err := e.pat.repo.EndEmergency(context.Background(), e.pat.keys); err != nil {
		t.Fatal(err)
	}
	var pack, end protocol.Entry
	_, blocks, err := e.pat.repo.emergencyBlocks(context.Background(), e.pat.keys.ID)
	if err != nil || len(blocks) != 2 {
		t.Fatalf("%d blocks, %v", len(blocks), err)
	}
	pack, end = blocks[0].Entries[0], blocks[1].Entries[0]
	name := func(k []byte) string { return string(protocol.AccountIDFromKey(k)) }
	if s := summarize(pack, name); !strings.Contains(s, "emergency pack") || !strings.Contains(s, "2 of") || !strings.Contains(s, string(e.gina.keys.ID)) {
		t.Fatalf("pack in words: %q", s)
	}
	if s := summarize(end, name); !strings.HasPrefix(s, "end emergency pack ") {
		t.Fatalf("end in words: %q", s)
	}
}

// The patient's guardians that accepted are told of every use without her
// naming their nodes: a pack's notify list has their declared nodes (those
// of a guardian whose chain her repo holds), not a removed guardian's, and
// not those of a guardian that has not accepted the appointment
// (RuleEmergencyNotifyNotAccepted): anybody can be appointed, and the
// notices are not for a node that is not the ward's yet. The patient may
// still name that node herself, and then it is told.
func TestEmergencyTellsGuardians(t *testing.T) {
	ctx := context.Background()
	e := newEmergencyWorld(t)
	pat := e.pat.keys.ID
	const ginaNode, plainNode, fakeNode = "12D3KooWLJtG8fd2hkQzTn96MrLvThmnNQjTUFZwGEsLRz5EmSzc", "12D3KooWH3uVF6wv47WnArKHk5p6cvgCJEb74UTmxztmQDc298L3", "12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK"
	for _, g := range []struct {
		p    *party
		node string
	}{{e.gina, ginaNode}, {e.plain, plainNode}, {e.fake, fakeNode}} {
		if _, err := g.p.repo.SetDevice(ctx, g.p.keys, g.node, "laptop", false); err != nil {
			t.Fatal(err)
		}
		send(t, g.p, e.pat)
		if _, err := e.pat.repo.AppointGuardian(ctx, e.pat.keys, g.p.keys.ID, []protocol.GuardianRight{protocol.RightRead}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []*party{e.gina, e.plain} { // fake never answers
		send(t, e.pat, g)
		acceptAs(t, g, pat, e.pat)
	}
	if _, err := e.pat.repo.RemoveGuardian(ctx, e.pat.keys, e.plain.keys.ID); err != nil {
		t.Fatal(err)
	}
	info := e.setup(t)
	if !slices.Contains(info.Notify, ginaNode) {
		t.Errorf("the guardian's node is not told: notify %v", info.Notify)
	}
	if slices.Contains(info.Notify, plainNode) {
		t.Errorf("a removed guardian's node is told: notify %v", info.Notify)
	}
	if slices.Contains(info.Notify, fakeNode) {
		t.Errorf("the node of a guardian that has not accepted is told: notify %v", info.Notify)
	}
	named, err := e.pat.repo.SetupEmergency(ctx, e.pat.keys, EmergencySetup{Custodians: []protocol.AccountID{e.gina.keys.ID, e.clinic.keys.ID, e.hart.keys.ID},
		Threshold: 2, Summary: []byte(summaryText), Notify: []string{fakeNode}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(named.Notify, fakeNode) || !slices.Contains(named.Notify, ginaNode) {
		t.Errorf("the patient named the pending guardian's node: notify %v", named.Notify)
	}
}
