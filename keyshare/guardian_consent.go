package keyshare

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Guardian consent (protocol/guardian_consent.go; the rule is
// guardianConsent in policy.go). Anybody whose chain a node holds can
// appoint one of its accounts guardian; the appointment counts for the
// guardian's acting, for relaying requests to it and for serving its
// chain to the ward only once the guardian accepts it, by a signed
// wardaccept entry on its own chain, which every node holding that chain
// sees. A warddecline refuses an offer, or resigns an accepted one.

// consentEvent is one wardaccept or warddecline entry of a guardian's
// chain.
type consentEvent struct {
	Ward protocol.AccountID `json:"ward"`
	// Appointment is the CID of the ward's chain block holding the
	// guardian entry answered.
	Appointment string   `json:"appointment"`
	Decline     bool     `json:"decline,omitempty"`
	Via         EntryRef `json:"via"`
}

// addConsent applies a wardaccept or warddecline entry to the guardian's
// state.
func (st *accountState) addConsent(body protocol.EntryBody, ref EntryRef) {
	var c *protocol.WardConsent
	decline := false
	switch b := body.(type) {
	case *protocol.WardAccept:
		c = &b.WardConsent
	case *protocol.WardDecline:
		c, decline = &b.WardConsent, true
	default:
		return
	}
	st.Consents = append(st.Consents, consentEvent{Ward: c.WardID(), Appointment: c.Appointment.String(), Decline: decline, Via: ref})
}

// consentsOf returns guardian's answers to appointments by ward, in
// chain order, as this repo holds guardian's chain.
func (r *Repo) consentsOf(ctx context.Context, guardian, ward protocol.AccountID) ([]consentEvent, error) {
	st, err := r.state(ctx, guardian)
	if errors.Is(err, ErrUnknownAccount) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []consentEvent
	for _, c := range st.Consents {
		if c.Ward == ward {
			out = append(out, c)
		}
	}
	return out, nil
}

// latestSpan returns the index of guardian's latest appointment among
// spans, or -1.
func latestSpan(spans []guardianSpan, guardian protocol.AccountID) int {
	for i := len(spans) - 1; i >= 0; i-- {
		if spans[i].Guardian == guardian {
			return i
		}
	}
	return -1
}

// consentTo decides whether guardian consents to its latest appointment
// by ward (guardianConsent), by the chains this repo holds.
func (r *Repo) consentTo(ctx context.Context, guardian, ward protocol.AccountID) (Decision, error) {
	evs, err := r.guardiansOf(ctx, ward)
	if err != nil {
		return Decision{}, err
	}
	spans := guardianSpans(evs)
	i := latestSpan(spans, guardian)
	if i < 0 {
		return refuse(RuleGuardianNone, "%s never appointed %s guardian", ward, guardian), nil
	}
	cs, err := r.consentsOf(ctx, guardian, ward)
	if err != nil {
		return Decision{}, err
	}
	return guardianConsent(spans, i, cs), nil
}

// ErrConsent is returned when accepting or declining an appointment that
// cannot be answered so: none open, or answered so already.
var ErrConsent = errors.New("cannot answer the appointment")

// AcceptWard accepts, as k, ward's open appointment of k as guardian: a
// wardaccept entry on k's chain naming the ward's block that holds it.
// From then on k's node acts for ward within the appointment, takes
// requests relayed for her, and serves k's chain to her nodes.
func (r *Repo) AcceptWard(ctx context.Context, k *Keys, ward protocol.AccountID) (cid.Cid, Guardianship, error) {
	return r.answerWard(ctx, k, ward, false)
}

// DeclineWard declines, as k, ward's open appointment of k as guardian,
// or resigns it when k accepted it: a warddecline entry on k's chain.
// Nothing of the appointment counts on k's side after it; after a
// resignation (guardian/resigned) the ward's nodes are still served k's
// chain, so that they learn of it.
func (r *Repo) DeclineWard(ctx context.Context, k *Keys, ward protocol.AccountID) (cid.Cid, Guardianship, error) {
	return r.answerWard(ctx, k, ward, true)
}

func (r *Repo) answerWard(ctx context.Context, k *Keys, ward protocol.AccountID, decline bool) (cid.Cid, Guardianship, error) {
	if ward == k.ID {
		return cid.Undef, Guardianship{}, fmt.Errorf("%w: an account is not its own guardian", ErrConsent)
	}
	evs, err := r.guardiansOf(ctx, ward)
	if err != nil {
		return cid.Undef, Guardianship{}, err
	}
	spans := guardianSpans(evs)
	i := latestSpan(spans, k.ID)
	if i < 0 {
		return cid.Undef, Guardianship{}, fmt.Errorf("%w: %s has not appointed %s guardian (as far as this node holds its chain)", ErrNotGuardian, ward, k.ID)
	}
	s := spans[i]
	if s.Closed {
		return cid.Undef, Guardianship{}, fmt.Errorf("%w: %s removed %s as guardian at %s", ErrConsent, ward, k.ID, s.Ended)
	}
	if !decline && s.Until != 0 && !r.now().Before(time.UnixMilli(s.Until)) {
		return cid.Undef, Guardianship{}, fmt.Errorf("%w: the appointment ended at %s", ErrConsent, untilText(s.Until))
	}
	cs, err := r.consentsOf(ctx, k.ID, ward)
	if err != nil {
		return cid.Undef, Guardianship{}, err
	}
	d := guardianConsent(spans, i, cs)
	switch {
	case !decline && d.Allow:
		return cid.Undef, Guardianship{}, fmt.Errorf("%w: accepted already (%s)", ErrConsent, d.Reason)
	case decline && (d.Rule == RuleGuardianDeclined || d.Rule == RuleGuardianResigned):
		return cid.Undef, Guardianship{}, fmt.Errorf("%w: declined already (%s)", ErrConsent, d.Reason)
	}
	appt, err := cid.Decode(s.Appointed.Block)
	if err != nil {
		return cid.Undef, Guardianship{}, fmt.Errorf("appointment block: %w", err)
	}
	body := protocol.WardConsent{Ward: keyOf(ward), Appointment: protocol.NewLink(appt)}
	var e protocol.Entry
	if decline {
		e = protocol.NewEntry(&protocol.WardDecline{WardConsent: body})
	} else {
		e = protocol.NewEntry(&protocol.WardAccept{WardConsent: body})
	}
	r.mu.Lock()
	block, err := r.appendBlock(ctx, k, []protocol.Entry{e})
	r.mu.Unlock()
	if err != nil {
		return cid.Undef, Guardianship{}, err
	}
	g, err := r.consentTo(ctx, k.ID, ward)
	if err != nil {
		return block, Guardianship{}, err
	}
	out := guardianship(ward, s, r.now())
	out.setConsent(g)
	return block, out, nil
}

// Consent is a guardian's answer to an appointment, as a node sees it.
type Consent string

// The answers.
const (
	ConsentPending  Consent = "pending"  // not answered (or widened since the accept): counts for nothing on the guardian's side
	ConsentAccepted Consent = "accepted" // accepted (or narrowed since)
	ConsentDeclined Consent = "declined" // declined, or resigned after accepting
)

func (g *Guardianship) setConsent(d Decision) {
	g.ConsentRule, g.ConsentReason = d.Rule, d.Reason
	switch {
	case d.Allow:
		g.Consent = ConsentAccepted
	case d.Rule == RuleGuardianDeclined, d.Rule == RuleGuardianResigned:
		g.Consent = ConsentDeclined
	default:
		g.Consent = ConsentPending
	}
}

// guardianLinksServed returns what serveChainGuardian decides owner's
// chain blocks on for a peer acting for the accounts acting: the
// guardians owner's chain names, and those of acting whose chains appoint
// owner, each with owner's answer to its latest appointment. Only the
// peer's own accounts are looked at: anybody can appoint owner, so the
// wards' number is a stranger's to choose (a want must not cost in
// proportion to it).
func (r *Repo) guardianLinksServed(ctx context.Context, owner protocol.AccountID, acting []protocol.AccountID) ([]protocol.AccountID, map[protocol.AccountID]Decision, error) {
	evs, err := r.guardiansOf(ctx, owner)
	if err != nil {
		return nil, nil, err
	}
	var guardians []protocol.AccountID
	for _, ev := range evs {
		if !slices.Contains(guardians, ev.Guardian) {
			guardians = append(guardians, ev.Guardian)
		}
	}
	wards := map[protocol.AccountID]Decision{}
	for _, w := range acting {
		if w == owner {
			continue
		}
		if named, err := r.ds.Has(ctx, keyGuardOf(owner, w)); err != nil {
			return nil, nil, err
		} else if !named {
			continue
		}
		if wards[w], err = r.consentTo(ctx, owner, w); err != nil {
			return nil, nil, err
		}
	}
	return guardians, wards, nil
}

// whyNoLocalGuardian says why no account of this repo answers for ward
// though ward's chain appoints one (not accepted, declined, no approve
// right…), or "" when ward appoints none of them.
func (r *Repo) whyNoLocalGuardian(ctx context.Context, ward protocol.AccountID) (string, error) {
	evs, err := r.guardiansOf(ctx, ward)
	if err != nil {
		return "", err
	}
	spans := guardianSpans(evs)
	for i := len(spans) - 1; i >= 0; i-- {
		g := spans[i].Guardian
		if latestSpan(spans, g) != i {
			continue
		}
		if local, err := r.isLocal(ctx, g); err != nil {
			return "", err
		} else if !local {
			continue
		}
		if err := r.MayActFor(ctx, g, ward, protocol.RightApprove); err != nil {
			return fmt.Sprintf("its guardian here, %s, may not answer for it (%v)", g, err), nil
		}
	}
	return "", nil
}
