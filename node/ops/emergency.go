package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/emergency"
	"github.com/blockmrs/blockmrs/protocol"
)

// Emergency access (SECURITY.md "Emergency access"): a patient seals an
// emergency summary and splits its key k-of-n among custodians
// (keyshare.Repo.SetupEmergency); an attested emergency clinician opens
// it with k custodians' shares (node/emergency), even with the patient's
// node off; every request decided is recorded and shown to the patient.

// EmergencySetupRequest sets up the acting account's emergency pack.
type EmergencySetupRequest struct {
	// Custodians are accounts the repo knows (ID, name or ID suffix),
	// at least two: guardians, a GP, clinic accounts.
	Custodians []string `json:"custodians"`
	// Threshold is how many custodians' shares open the summary, 2 to
	// len(Custodians).
	Threshold int `json:"threshold"`
	// Records, when set, are the records (FHIR, the acting account's own
	// or readable by it) the summary holds, as a FHIR Bundle of type
	// collection; otherwise the summary is the International Patient
	// Summary of the account's FHIR records (GET /api/v1/fhir/summary).
	Records []string `json:"records,omitempty"`
	// Until is the pack's expiry (RFC 3339); zero: a year from now.
	Until time.Time `json:"until,omitzero"`
	// Window is how long a first use keeps the pack open to other
	// clinicians ("24h"); empty: 24 hours.
	Window string `json:"window,omitempty"`
	// Notify adds peer IDs that custodians tell of every use, besides
	// this node, the account's declared nodes and those of its guardians
	// that accepted their appointments (a pending guardian's node, say).
	Notify []string `json:"notify,omitempty"`
}

// EmergencyPack describes a pack (keyshare.EmergencyPackInfo).
type EmergencyPack = keyshare.EmergencyPackInfo

// EmergencyUse is one decided request (keyshare.EmergencyUse).
type EmergencyUse = keyshare.EmergencyUse

// EmergencyShown is what EmergencyShow returns: the acting account's
// packs, the uses of them reported to this node, the packs this node
// holds as custodian and the requests it decided.
type EmergencyShown struct {
	// Packs are the account's own packs, newest first.
	Packs []EmergencyPack `json:"packs"`
	// Uses are the requests for them custodians reported (or this node
	// decided), newest first: shown as a banner.
	Uses []EmergencyUse `json:"uses"`
	// Held are the packs this node keeps as a custodian.
	Held []EmergencyPack `json:"held"`
	// Decided are the requests this node decided as custodian.
	Decided []EmergencyUse `json:"decided"`
	// Reported are uses of other patients' packs that custodians
	// reported to this node (a guardian's node the pack names).
	Reported []EmergencyUse `json:"reported"`
}

// EmergencyOpenRequest is a clinician's break-glass request.
type EmergencyOpenRequest struct {
	// Patient is the patient's account ID (from her card or wristband).
	Patient string `json:"patient"`
	// Reason is why, recorded by every custodian and shown to the
	// patient; required.
	Reason string `json:"reason"`
	// Via are custodians' nodes to ask first: addresses
	// (/ip4/…/tcp/…/p2p/PEERID) or peer IDs the node can find (connected
	// peers are asked too, then the nodes the pack names).
	Via []string `json:"via,omitempty"`
}

// EmergencyOpened is the opened summary.
type EmergencyOpened struct {
	Pack EmergencyPack `json:"pack"`
	// Summary is the summary's content (a FHIR document as JSON, for the
	// default summary).
	Summary json.RawMessage `json:"summary,omitempty"`
	// Text is the content when it is not JSON.
	Text string `json:"text,omitempty"`
	// From are the custodians whose shares opened it.
	From []protocol.AccountID `json:"from"`
	// Asked are the answers of every custodian's node asked.
	Asked []emergency.Asked `json:"asked"`
}

// EmergencyEnded is what EmergencyEnd returns.
type EmergencyEnded struct {
	Ended []EmergencyPack `json:"ended"`
}

// EmergencyOpener opens a pack over the network (the daemon's
// emergency.Service).
type EmergencyOpener interface {
	Open(ctx context.Context, k *keyshare.Keys, patient protocol.AccountID, reason string, via []peer.AddrInfo) (emergency.Opened, error)
}

// EmergencySetup seals the summary, splits its key and appends the pack
// to k's chain (ending its live pack); the daemon delivers it.
func EmergencySetup(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req EmergencySetupRequest) (EmergencyPack, error) {
	var ids []protocol.AccountID
	for _, c := range req.Custodians {
		a, err := repo.Resolve(ctx, c, false)
		if err != nil {
			return EmergencyPack{}, fmt.Errorf("custodian %q: %w", c, errors.Join(ErrNotFound, err))
		}
		ids = append(ids, a.ID)
	}
	window := time.Duration(0)
	if req.Window != "" {
		d, err := time.ParseDuration(req.Window)
		if err != nil {
			return EmergencyPack{}, invalidf("window %q: a duration such as 24h", req.Window)
		}
		window = d
	}
	s := keyshare.EmergencySetup{Custodians: ids, Threshold: req.Threshold, Until: req.Until, Window: window, Notify: req.Notify}
	var err error
	if len(req.Records) > 0 {
		s.Title = fmt.Sprintf("Emergency records (%d)", len(req.Records))
		s.Summary, err = emergencyBundle(ctx, repo, k, req.Records)
	} else {
		s.Title = "International Patient Summary"
		s.Summary, err = FHIRSummary(ctx, repo, k, time.Now())
	}
	if err != nil {
		return EmergencyPack{}, err
	}
	s.MediaType = "application/fhir+json"
	p, err := repo.SetupEmergency(ctx, k, s)
	if err != nil {
		return EmergencyPack{}, invalidf("emergency setup: %v", err)
	}
	return p, nil
}

// emergencyBundle gathers the records' FHIR resources into a Bundle of
// type collection.
func emergencyBundle(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, records []string) ([]byte, error) {
	type entry struct {
		Resource json.RawMessage `json:"resource"`
	}
	bundle := struct {
		ResourceType string  `json:"resourceType"`
		Type         string  `json:"type"`
		Entry        []entry `json:"entry"`
	}{ResourceType: "Bundle", Type: "collection"}
	for _, s := range records {
		c, err := cid.Decode(s)
		if err != nil {
			return nil, invalidf("record %q: not a CID", s)
		}
		env, rc, err := repo.OpenRecord(ctx, k, c)
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", c, err)
		}
		body, err := io.ReadAll(io.LimitReader(rc, protocol.MaxEmergencySealed+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", c, err)
		}
		if env.Kind != protocol.KindFHIR || !json.Valid(body) || !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
			return nil, invalidf("record %s is not a FHIR resource: an emergency pack holds FHIR records", c)
		}
		bundle.Entry = append(bundle.Entry, entry{Resource: body})
	}
	return json.Marshal(bundle)
}

// EmergencyShow lists k's packs and their uses, and what this node holds
// and decided as custodian.
func EmergencyShow(ctx context.Context, repo *keyshare.Repo, me protocol.AccountID) (EmergencyShown, error) {
	var out EmergencyShown
	var err error
	if out.Packs, err = repo.EmergencyPacks(ctx, me); err != nil {
		return out, err
	}
	if err = repo.EmergencyDelivery(ctx, me, out.Packs); err != nil {
		return out, fmt.Errorf("delivery to custodians: %w", err)
	}
	if out.Uses, err = repo.EmergencyUses(ctx, me); err != nil {
		return out, err
	}
	if out.Held, err = repo.HeldEmergency(ctx); err != nil {
		return out, err
	}
	all, err := repo.EmergencyUses(ctx, "")
	if err != nil {
		return out, err
	}
	for _, u := range all {
		switch {
		case u.Patient == me:
		case u.ReportedBy == "":
			out.Decided = append(out.Decided, u)
		default:
			out.Reported = append(out.Reported, u)
		}
	}
	if out.Packs == nil {
		out.Packs = []EmergencyPack{}
	}
	if out.Uses == nil {
		out.Uses = []EmergencyUse{}
	}
	if out.Held == nil {
		out.Held = []EmergencyPack{}
	}
	if out.Decided == nil {
		out.Decided = []EmergencyUse{}
	}
	if out.Reported == nil {
		out.Reported = []EmergencyUse{}
	}
	return out, nil
}

// EmergencyOpen asks custodians for the shares of the patient's pack
// as k and opens its summary.
func EmergencyOpen(ctx context.Context, o EmergencyOpener, k *keyshare.Keys, req EmergencyOpenRequest) (EmergencyOpened, error) {
	if o == nil {
		return EmergencyOpened{}, fmt.Errorf("%w: emergency access needs the daemon running (blockmrs daemon)", ErrNoNode)
	}
	patient := protocol.AccountID(req.Patient)
	if _, err := patient.Key(); err != nil {
		return EmergencyOpened{}, invalidf("patient: %v", err)
	}
	if len(req.Reason) == 0 || len(req.Reason) > protocol.MaxReasonLen {
		return EmergencyOpened{}, invalidf("a reason of 1 to %d bytes is required: every custodian records it and the patient sees it", protocol.MaxReasonLen)
	}
	var via []peer.AddrInfo
	for _, v := range req.Via {
		if strings.HasPrefix(v, "/") {
			ai, err := peer.AddrInfoFromString(v)
			if err != nil {
				return EmergencyOpened{}, invalidf("via %q: not an address ending in /p2p/PEERID: %v", v, err)
			}
			via = append(via, *ai)
			continue
		}
		p, err := peer.Decode(v)
		if err != nil {
			return EmergencyOpened{}, invalidf("via %q: not a peer ID or address", v)
		}
		via = append(via, peer.AddrInfo{ID: p})
	}
	res, err := o.Open(ctx, k, patient, req.Reason, via)
	out := EmergencyOpened{Asked: res.Asked, From: res.From, Pack: res.Pack}
	if out.Asked == nil {
		out.Asked = []emergency.Asked{}
	}
	if err != nil {
		return out, err
	}
	if json.Valid(res.Summary) {
		out.Summary = res.Summary
	} else {
		out.Text = string(res.Summary)
	}
	return out, nil
}

// EmergencyEnd ends k's live pack.
func EmergencyEnd(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys) (EmergencyEnded, error) {
	ended, err := repo.EndEmergency(ctx, k)
	if errors.Is(err, keyshare.ErrNoEmergencyPack) {
		return EmergencyEnded{}, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return EmergencyEnded{Ended: ended}, err
}
