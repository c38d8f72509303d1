package keyshare

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// Emergency access (PROTOCOL.md §5.12 and §10.6, SECURITY.md "Emergency access").
//
// The patient's side: SetupEmergency seals a summary, splits its key
// among custodians and appends the pack to her chain; EndEmergency
// withdraws it; EmergencyDeposits lists the pack and end blocks still to
// be delivered to custodians' nodes. The custodian's side: HoldEmergency
// keeps a delivered block, AnswerEmergency decides a clinician's request
// (emergencyShare in policy.go) and re-encrypts the share to the
// clinician. The clinician's side: NewEmergencyRequest signs a request,
// OpenEmergency combines shares and opens the summary. Every decision is
// kept as an EmergencyUse and sent as a signed notice to the nodes the
// patient listed; ReceiveEmergencyNotice keeps those that arrive.

// Defaults and limits of emergency packs.
const (
	DefaultEmergencyValidity = 365 * 24 * time.Hour // pack expiry when none is given
	MaxEmergencyValidity     = 5 * 366 * 24 * time.Hour
	DefaultEmergencyWindow   = 24 * time.Hour // how long a first use keeps the pack open
	MaxHeldPerPatient        = 1              // packs of one patient a custodian keeps: the newest (policy emergencyKeep)
	MaxHeld                  = 256            // packs a custodian's node keeps in all (each up to a chain block)
	MaxEmergencyUses         = 1000           // uses listed at most
)

// ErrNoEmergencyPack is returned when there is no live pack to end.
var ErrNoEmergencyPack = errors.New("no live emergency pack")

func keyHeld(patient protocol.AccountID, id []byte) datastore.Key {
	return datastore.NewKey("/keyshare/emergency/held/" + string(patient) + "/" + hex.EncodeToString(id))
}

func keyEnded(patient protocol.AccountID, id []byte) datastore.Key {
	return datastore.NewKey("/keyshare/emergency/ended/" + string(patient) + "/" + hex.EncodeToString(id))
}

func keyFirstUse(patient protocol.AccountID, id []byte) datastore.Key {
	return datastore.NewKey("/keyshare/emergency/first/" + string(patient) + "/" + hex.EncodeToString(id))
}

func keyNonce(nonce []byte) datastore.Key {
	return datastore.NewKey("/keyshare/emergency/nonce/" + hex.EncodeToString(nonce))
}

func keyUse(patient protocol.AccountID, t time.Time, id string) datastore.Key {
	return datastore.NewKey(fmt.Sprintf("/keyshare/emergency/use/%s/%020d-%s", patient, t.UnixMilli(), id))
}

func keyDeposited(block cid.Cid, custodian protocol.AccountID) datastore.Key {
	return datastore.NewKey("/keyshare/emergency/deposited/" + block.String() + "/" + string(custodian))
}

func keyNoticeOut(id string) datastore.Key {
	return datastore.NewKey("/keyshare/emergency/notice-out/" + id)
}

// EmergencySetup is what a patient chooses for a pack.
type EmergencySetup struct {
	Custodians []protocol.AccountID // accounts known to the repo; not the patient
	Threshold  int                  // shares needed, 2 to len(Custodians)
	Until      time.Time            // expiry; zero: DefaultEmergencyValidity from now
	Window     time.Duration        // how long a first use keeps it open; 0: DefaultEmergencyWindow
	Title      string
	MediaType  string
	Summary    []byte
	// Notify adds peers (besides the patient's own declared nodes and
	// this node) that custodians tell of every use: a node of a
	// guardian that has not accepted its appointment, say, which is not
	// added by itself (emergencyNotifyGuardian).
	Notify []string
}

// EmergencyPackInfo describes a pack.
type EmergencyPackInfo struct {
	ID         string               `json:"id"` // hex
	Patient    protocol.AccountID   `json:"patient"`
	Title      string               `json:"title"`
	MediaType  string               `json:"media_type"`
	Threshold  int                  `json:"threshold"`
	Custodians []protocol.AccountID `json:"custodians"`
	Notify     []string             `json:"notify"`
	Until      time.Time            `json:"until"`
	Window     time.Duration        `json:"window_ns"`
	Created    time.Time            `json:"created"`
	Block      string               `json:"block"`
	Ended      bool                 `json:"ended"`
	Expired    bool                 `json:"expired"`
	FirstUse   *time.Time           `json:"first_use,omitempty"` // on a custodian's node
	// Delivery says, on the patient's node, where the pack (or its end)
	// stands with each custodian (Repo.EmergencyDelivery).
	Delivery []CustodianDelivery `json:"delivery,omitempty"`
}

func packInfo(b *protocol.Block, c cid.Cid, p *protocol.EmergencyPack, now time.Time) EmergencyPackInfo {
	return EmergencyPackInfo{ID: hex.EncodeToString(p.ID), Patient: b.AuthorID(), Title: p.Title, MediaType: p.MediaType,
		Threshold: int(p.Threshold), Custodians: p.Custodians(), Notify: p.NotifyPeers(), Until: time.UnixMilli(p.Until).UTC(),
		Window: time.Duration(p.Window) * time.Millisecond, Created: time.UnixMilli(b.Time).UTC(), Block: c.String(),
		Expired: !now.Before(time.UnixMilli(p.Until))}
}

// SetupEmergency makes a pack for k from s and appends it to k's chain,
// ending k's live packs in the same block (one pack is live at a time).
// It returns the new pack.
func (r *Repo) SetupEmergency(ctx context.Context, k *Keys, s EmergencySetup) (EmergencyPackInfo, error) {
	now := r.now()
	n := len(s.Custodians)
	if n < protocol.MinEmergencyThreshold || n > protocol.MaxEmergencyCustodian {
		return EmergencyPackInfo{}, fmt.Errorf("name %d to %d custodians (got %d)", protocol.MinEmergencyThreshold, protocol.MaxEmergencyCustodian, n)
	}
	if s.Threshold < protocol.MinEmergencyThreshold || s.Threshold > n {
		return EmergencyPackInfo{}, fmt.Errorf("threshold %d: must be %d to %d (the number of custodians), so that no custodian alone opens the pack", s.Threshold, protocol.MinEmergencyThreshold, n)
	}
	until := s.Until
	if until.IsZero() {
		until = now.Add(DefaultEmergencyValidity)
	}
	if !until.After(now) {
		return EmergencyPackInfo{}, errors.New("expiry is in the past")
	}
	if until.After(now.Add(MaxEmergencyValidity)) {
		return EmergencyPackInfo{}, errors.New("expiry more than 5 years ahead: a pack must be renewed")
	}
	window := s.Window
	if window == 0 {
		window = DefaultEmergencyWindow
	}
	if window < time.Minute || window > 30*24*time.Hour {
		return EmergencyPackInfo{}, errors.New("use window must be between 1 minute and 30 days")
	}
	if len(s.Summary) == 0 {
		return EmergencyPackInfo{}, errors.New("empty summary")
	}
	title := s.Title
	if title == "" {
		title = "Emergency summary"
	}
	media := s.MediaType
	if media == "" {
		media = "application/fhir+json"
	}
	id := make([]byte, protocol.EmergencyIDSize)
	if _, err := rand.Read(id); err != nil {
		return EmergencyPackInfo{}, err
	}
	split, err := protocol.SealEmergency(rand.Reader, id, s.Summary, s.Threshold, n)
	if err != nil {
		return EmergencyPackInfo{}, err
	}
	p := &protocol.EmergencyPack{ID: id, Title: title, MediaType: media, Threshold: uint64(s.Threshold),
		Until: until.UnixMilli(), Window: window.Milliseconds(), Commit: split.Commit, Sealed: split.Sealed}
	seen := map[protocol.AccountID]bool{}
	for i, c := range s.Custodians {
		if c == k.ID {
			return EmergencyPackInfo{}, errors.New("you cannot be your own custodian")
		}
		if seen[c] {
			return EmergencyPackInfo{}, fmt.Errorf("custodian %s named twice", c)
		}
		seen[c] = true
		info, err := r.Account(ctx, c)
		if err != nil {
			return EmergencyPackInfo{}, fmt.Errorf("custodian %s: %w", c, err)
		}
		rcpt, err := info.AgeRecipient()
		if err != nil {
			return EmergencyPackInfo{}, fmt.Errorf("custodian %s: %w", c, err)
		}
		enc, err := seal(split.Values[i], rcpt)
		if err != nil {
			return EmergencyPackInfo{}, fmt.Errorf("encrypt share for %s: %w", c, err)
		}
		nodes, err := peerBytes(devicePeers(info))
		if err != nil {
			return EmergencyPackInfo{}, fmt.Errorf("custodian %s: %w", c, err)
		}
		p.Shares = append(p.Shares, protocol.EmergencyShare{To: keyOf(c), Index: uint64(i + 1), Share: enc, Nodes: nodes})
	}
	notify, err := r.emergencyNotify(ctx, k.ID, s.Notify)
	if err != nil {
		return EmergencyPackInfo{}, err
	}
	if p.Notify, err = peerBytes(notify); err != nil {
		return EmergencyPackInfo{}, err
	}
	packs, err := r.EmergencyPacks(ctx, k.ID)
	if err != nil {
		return EmergencyPackInfo{}, err
	}
	entries := []protocol.Entry{protocol.NewEntry(p)}
	for _, old := range packs {
		if !old.Ended {
			oid, _ := hex.DecodeString(old.ID)
			entries = append(entries, protocol.NewEntry(&protocol.EmergencyEnd{ID: oid}))
		}
	}
	r.mu.Lock()
	block, err := r.appendBlock(ctx, k, entries)
	r.mu.Unlock()
	if err != nil {
		return EmergencyPackInfo{}, err
	}
	if err := r.noteOwnBlock(ctx, k.ID, block); err != nil {
		return EmergencyPackInfo{}, err
	}
	b, err := r.readBlock(ctx, block)
	if err != nil {
		return EmergencyPackInfo{}, err
	}
	r.kickEmergency()
	return packInfo(b, block, p, now), nil
}

func label(a AccountInfo) string {
	if a.Name != "" {
		return fmt.Sprintf("%s (%s)", a.Name, a.ID)
	}
	return string(a.ID)
}

func devicePeers(a AccountInfo) []string {
	var out []string
	for _, d := range a.Devices {
		if !d.Replica {
			out = append(out, d.PeerID)
		}
	}
	return out
}

func peerBytes(ids []string) ([][]byte, error) {
	var out [][]byte
	seen := map[string]bool{}
	for _, s := range ids {
		if seen[s] {
			continue
		}
		seen[s] = true
		b, err := protocol.ParsePeerID(s)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	if len(out) > protocol.MaxEmergencyNotify {
		return nil, fmt.Errorf("more than %d nodes", protocol.MaxEmergencyNotify)
	}
	return out, nil
}

// emergencyNotify returns the peers custodians are to tell of a use of
// patient's pack: this node, the patient's declared nodes, extra, and the
// declared nodes of her live guardians that accepted their appointments
// (emergencyNotifyGuardian) whose chains this repo holds, as far as
// protocol.MaxEmergencyNotify allows (the others first).
func (r *Repo) emergencyNotify(ctx context.Context, patient protocol.AccountID, extra []string) ([]string, error) {
	var out []string
	if id := r.nodeID.Load(); id != nil && *id != "" {
		out = append(out, *id)
	}
	devs, err := r.DevicesOf(ctx, patient)
	if err != nil {
		return nil, err
	}
	out = append(out, devs...)
	for _, e := range extra {
		if _, err := protocol.ParsePeerID(e); err != nil {
			return nil, fmt.Errorf("notify: %w", err)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, errors.New("no node to tell of a use: run the daemon (so this node's peer ID is known) or declare a device")
	}
	evs, err := r.guardiansOf(ctx, patient)
	if err != nil {
		return nil, fmt.Errorf("guardians: %w", err)
	}
	seen := map[string]bool{}
	for _, p := range out {
		seen[p] = true
	}
	spans, now := guardianSpans(evs), r.now()
	for i := len(spans) - 1; i >= 0; i-- { // the newest first
		g := spans[i]
		if latestSpan(spans, g.Guardian) != i {
			continue
		}
		cs, err := r.consentsOf(ctx, g.Guardian, patient)
		if err != nil {
			return nil, fmt.Errorf("guardians: %w", err)
		}
		if d := emergencyNotifyGuardian(g, guardianConsent(spans, i, cs), now); !d.Allow {
			continue
		}
		gdevs, err := r.DevicesOf(ctx, g.Guardian)
		if errors.Is(err, ErrUnknownAccount) {
			continue
		} else if err != nil {
			return nil, err
		}
		for _, d := range gdevs {
			if !seen[d] && len(seen) < protocol.MaxEmergencyNotify {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// EndEmergency ends k's live packs, in one block, and returns them.
func (r *Repo) EndEmergency(ctx context.Context, k *Keys) ([]EmergencyPackInfo, error) {
	packs, err := r.EmergencyPacks(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	var entries []protocol.Entry
	var ended []EmergencyPackInfo
	for _, p := range packs {
		if p.Ended {
			continue
		}
		id, _ := hex.DecodeString(p.ID)
		entries = append(entries, protocol.NewEntry(&protocol.EmergencyEnd{ID: id}))
		p.Ended = true
		ended = append(ended, p)
	}
	if len(entries) == 0 {
		return nil, ErrNoEmergencyPack
	}
	r.mu.Lock()
	block, err := r.appendBlock(ctx, k, entries)
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := r.noteOwnBlock(ctx, k.ID, block); err != nil {
		return nil, err
	}
	r.kickEmergency()
	return ended, nil
}

// emergencyBlocks walks id's chain and returns its blocks holding
// emergency entries, oldest first.
func (r *Repo) emergencyBlocks(ctx context.Context, id protocol.AccountID) ([]cid.Cid, []*protocol.Block, error) {
	st, err := r.state(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	var cids []cid.Cid
	var blocks []*protocol.Block
	for seq := uint64(0); seq < st.Seq+1 && st.head().Defined(); seq++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		c, ok, err := r.blockAt(ctx, id, seq)
		if err != nil || !ok {
			return nil, nil, errors.Join(err, fmt.Errorf("block %d of %s missing", seq, id))
		}
		b, err := r.readBlock(ctx, c)
		if err != nil {
			return nil, nil, err
		}
		if slices.ContainsFunc(b.Entries, func(e protocol.Entry) bool {
			return e.Type == protocol.TypeEmergency || e.Type == protocol.TypeEmergencyEnd
		}) {
			cids = append(cids, c)
			blocks = append(blocks, b)
		}
	}
	return cids, blocks, nil
}

func keyOwnBlock(id protocol.AccountID, c cid.Cid) datastore.Key {
	return datastore.NewKey("/keyshare/emergency/own/" + string(id) + "/" + c.String())
}

// noteOwnBlock remembers a block this repo appended with emergency
// entries, so that delivery does not walk the whole chain every round.
func (r *Repo) noteOwnBlock(ctx context.Context, id protocol.AccountID, c cid.Cid) error {
	return r.ds.Put(ctx, keyOwnBlock(id, c), []byte{1})
}

// ownEmergencyBlocks returns the emergency blocks this repo appended for
// id, oldest first.
func (r *Repo) ownEmergencyBlocks(ctx context.Context, id protocol.AccountID) ([]cid.Cid, []*protocol.Block, error) {
	keys, err := listKeys(ctx, r.ds, "/keyshare/emergency/own/"+string(id)+"/")
	if err != nil {
		return nil, nil, err
	}
	var cids []cid.Cid
	var blocks []*protocol.Block
	for _, k := range keys {
		c, err := cid.Decode(k.BaseNamespace())
		if err != nil {
			return nil, nil, err
		}
		b, err := r.readBlock(ctx, c)
		if err != nil {
			return nil, nil, err
		}
		cids = append(cids, c)
		blocks = append(blocks, b)
	}
	sort.Sort(bySeq{cids, blocks})
	return cids, blocks, nil
}

type bySeq struct {
	c []cid.Cid
	b []*protocol.Block
}

func (s bySeq) Len() int           { return len(s.b) }
func (s bySeq) Less(i, j int) bool { return s.b[i].Seq < s.b[j].Seq }
func (s bySeq) Swap(i, j int) {
	s.c[i], s.c[j] = s.c[j], s.c[i]
	s.b[i], s.b[j] = s.b[j], s.b[i]
}

// EmergencyPacks lists the packs on id's chain (the repo holds it),
// newest first, with whether each was ended.
func (r *Repo) EmergencyPacks(ctx context.Context, id protocol.AccountID) ([]EmergencyPackInfo, error) {
	cids, blocks, err := r.emergencyBlocks(ctx, id)
	if err != nil {
		return nil, err
	}
	now := r.now()
	var out []EmergencyPackInfo
	ended := map[string]bool{}
	for i, b := range blocks {
		for _, e := range b.Entries {
			switch body := e.Body.(type) {
			case *protocol.EmergencyPack:
				out = append(out, packInfo(b, cids[i], body, now))
			case *protocol.EmergencyEnd:
				ended[hex.EncodeToString(body.ID)] = true
			}
		}
	}
	for i := range out {
		out[i].Ended = ended[out[i].ID]
	}
	slices.Reverse(out)
	return out, nil
}

// EmergencyDeposit is a block to deliver to a custodian's nodes.
type EmergencyDeposit struct {
	Custodian protocol.AccountID
	Nodes     []string
	Block     cid.Cid
	Raw       []byte
	Seq       uint64 // the block's position on the patient's chain
}

// EmergencyDeposits lists, for every local account, the blocks of its
// packs (and their ends) this repo appended and has not yet delivered to
// each custodian: a live pack to each of its custodians, an end to each
// custodian that took the pack (a pack ended before it reached a
// custodian is not sent at all). What it lists is kept in the repo, so a
// node that restarts delivers it. (Another device of the account
// delivers what it appended.)
func (r *Repo) EmergencyDeposits(ctx context.Context) ([]EmergencyDeposit, error) {
	accts, err := r.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	var out []EmergencyDeposit
	for _, a := range accts {
		if !a.Local {
			continue
		}
		own, err := r.ownPacks(ctx, a.ID)
		if err != nil {
			return nil, err
		}
		for i, b := range own.blocks {
			to := map[protocol.AccountID][]string{}
			for _, e := range b.Entries {
				switch body := e.Body.(type) {
				case *protocol.EmergencyPack:
					if _, ended := own.endBlock[string(body.ID)]; ended {
						continue
					}
					for _, s := range body.Shares {
						to[protocol.AccountIDFromKey(s.To)] = protocol.PeerIDs(s.Nodes)
					}
				case *protocol.EmergencyEnd:
					pb, ok := own.packBlock[string(body.ID)]
					if !ok {
						continue
					}
					for _, s := range own.shares[string(body.ID)] {
						c := protocol.AccountIDFromKey(s.To)
						took, err := r.ds.Has(ctx, keyDeposited(pb, c))
						if err != nil {
							return nil, err
						}
						if took {
							to[c] = protocol.PeerIDs(s.Nodes)
						}
					}
				}
			}
			if len(to) == 0 {
				continue
			}
			blk, err := r.st.Blockstore().Get(ctx, own.cids[i])
			if err != nil {
				return nil, fmt.Errorf("read block %s: %w", own.cids[i], err)
			}
			for c, nodes := range to {
				done, err := r.ds.Has(ctx, keyDeposited(own.cids[i], c))
				if err != nil {
					return nil, err
				}
				if !done {
					out = append(out, EmergencyDeposit{Custodian: c, Nodes: nodes, Block: own.cids[i], Raw: blk.RawData(), Seq: b.Seq})
				}
			}
		}
	}
	// Oldest block first, so a custodian meets a pack before its end.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Seq != out[j].Seq {
			return out[i].Seq < out[j].Seq
		}
		return out[i].Block.String()+string(out[i].Custodian) < out[j].Block.String()+string(out[j].Custodian)
	})
	return out, nil
}

// MarkDeposited records that custodian's node took block.
func (r *Repo) MarkDeposited(ctx context.Context, block cid.Cid, custodian protocol.AccountID) error {
	return r.ds.Put(ctx, keyDeposited(block, custodian), []byte{1})
}

// HoldEmergency keeps a pack or end block delivered by a patient's node
// for this node's custodians. The block must be validly signed by its
// author (the patient) and concern a local account: a pack naming one as
// custodian, or an end of a pack held here. What is kept is decided by
// emergencyKeep (policy.go): one pack per patient, the newest; a pack she
// ended or superseded is dropped at once, and refused if delivered again
// (not an error: the patient's node has nothing more to send). It returns
// the packs kept and those dropped.
func (r *Repo) HoldEmergency(ctx context.Context, raw []byte) ([]EmergencyPackInfo, error) {
	kept, _, err := r.holdEmergency(ctx, raw)
	return kept, err
}

// HoldEmergencyDropping is HoldEmergency, also returning the packs the
// block made this node drop (or refuse).
func (r *Repo) HoldEmergencyDropping(ctx context.Context, raw []byte) ([]EmergencyPackInfo, []DroppedPack, error) {
	return r.holdEmergency(ctx, raw)
}

func (r *Repo) holdEmergency(ctx context.Context, raw []byte) ([]EmergencyPackInfo, []DroppedPack, error) {
	b, err := protocol.DecodeBlock(raw)
	if err != nil {
		return nil, nil, err
	}
	patient := b.AuthorID()
	now := r.now()
	r.emergency.mu.Lock()
	defer r.emergency.mu.Unlock()
	m, err := r.loadMark(ctx, patient)
	if err != nil {
		return nil, nil, err
	}
	// Ends first: a new setup's block ends the old pack in it.
	useful := false
	for _, e := range b.Entries {
		if body, ok := e.Body.(*protocol.EmergencyEnd); ok {
			has, err := r.ds.Has(ctx, keyHeld(patient, body.ID))
			if err != nil {
				return nil, nil, err
			}
			if !has && m.ID != hex.EncodeToString(body.ID) {
				continue
			}
			if err := r.tombstone(ctx, patient, body.ID, b.Time); err != nil {
				return nil, nil, err
			}
			useful = true
		}
	}
	var kept []EmergencyPackInfo
	var dropped []DroppedPack
	for _, e := range b.Entries {
		body, ok := e.Body.(*protocol.EmergencyPack)
		if !ok {
			continue
		}
		f, err := r.holdFacts(ctx, b, body, m)
		if err != nil {
			return nil, nil, err
		}
		d := emergencyKeep(f, now)
		if d.Rule == RuleEmergencyKeepNotMine {
			continue
		}
		useful = true
		if !d.Allow {
			dropped = append(dropped, DroppedPack{Patient: patient, ID: hex.EncodeToString(body.ID), Decision: d})
			continue
		}
		k := keyHeld(patient, body.ID)
		if has, _ := r.ds.Has(ctx, k); !has {
			all, err := listKeys(ctx, r.ds, "/keyshare/emergency/held/")
			if err != nil {
				return nil, nil, err
			}
			if len(all) >= MaxHeld {
				return nil, nil, fmt.Errorf("this node already holds %d emergency packs, its limit", MaxHeld)
			}
		}
		if err := r.ds.Put(ctx, k, raw); err != nil {
			return nil, nil, err
		}
		m.note(b.Seq, body.ID)
		kept = append(kept, packInfo(b, protocol.BlockCID(raw), body, now))
	}
	if !useful {
		return nil, nil, errors.New("the block names no account of this node as custodian")
	}
	gone, err := r.pruneHeld(ctx, patient, m)
	if err != nil {
		return nil, nil, err
	}
	return kept, append(dropped, gone...), nil
}

// heldPack loads a held pack of patient: the one with id, or with an
// empty id the newest live one.
func (r *Repo) heldPack(ctx context.Context, patient protocol.AccountID, id []byte, now time.Time) (*protocol.EmergencyPack, []byte, error) {
	if len(id) > 0 {
		raw, err := r.ds.Get(ctx, keyHeld(patient, id))
		if errors.Is(err, datastore.ErrNotFound) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		p, err := packIn(raw, id)
		return p, raw, err
	}
	keys, err := listKeys(ctx, r.ds, "/keyshare/emergency/held/"+string(patient)+"/")
	if err != nil {
		return nil, nil, err
	}
	var best *protocol.EmergencyPack
	var bestRaw []byte
	var bestTime int64 = -1
	for _, k := range keys {
		raw, err := r.ds.Get(ctx, k)
		if err != nil {
			return nil, nil, err
		}
		pid, _ := hex.DecodeString(k.BaseNamespace())
		p, err := packIn(raw, pid)
		if err != nil {
			return nil, nil, err
		}
		if ended, _ := r.ds.Has(ctx, keyEnded(patient, pid)); ended {
			continue
		}
		b, _ := protocol.DecodeBlock(raw)
		if b.Time > bestTime {
			best, bestRaw, bestTime = p, raw, b.Time
		}
	}
	return best, bestRaw, nil
}

func packIn(raw, id []byte) (*protocol.EmergencyPack, error) {
	b, err := protocol.DecodeBlock(raw)
	if err != nil {
		return nil, err
	}
	for _, e := range b.Entries {
		if p, ok := e.Body.(*protocol.EmergencyPack); ok && bytes.Equal(p.ID, id) {
			return p, nil
		}
	}
	return nil, errors.New("held block holds no such pack")
}

// HeldEmergency lists the packs this node holds as custodian, newest
// first.
func (r *Repo) HeldEmergency(ctx context.Context) ([]EmergencyPackInfo, error) {
	keys, err := listKeys(ctx, r.ds, "/keyshare/emergency/held/")
	if err != nil {
		return nil, err
	}
	now := r.now()
	var out []EmergencyPackInfo
	for _, k := range keys {
		raw, err := r.ds.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		b, err := protocol.DecodeBlock(raw)
		if err != nil {
			return nil, err
		}
		pid, _ := hex.DecodeString(k.BaseNamespace())
		p, err := packIn(raw, pid)
		if err != nil {
			return nil, err
		}
		info := packInfo(b, protocol.BlockCID(raw), p, now)
		info.Ended, _ = r.ds.Has(ctx, keyEnded(b.AuthorID(), pid))
		var first time.Time
		if ok, _ := getJSON(ctx, r.ds, keyFirstUse(b.AuthorID(), pid), &first); ok {
			info.FirstUse = &first
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// EmergencyUse is one decided emergency request, as the custodian that
// decided it recorded it or as a notice reported it.
type EmergencyUse struct {
	Time       time.Time          `json:"time"` // when the custodian decided
	Patient    protocol.AccountID `json:"patient"`
	Pack       string             `json:"pack,omitempty"` // hex
	Clinician  protocol.AccountID `json:"clinician"`
	Custodian  protocol.AccountID `json:"custodian"`
	Reason     string             `json:"reason"`
	Given      bool               `json:"given"`
	Rule       Rule               `json:"rule"`
	Why        string             `json:"why,omitempty"` // the decision's reason (custodian's node only)
	Requested  time.Time          `json:"requested"`
	ReportedBy string             `json:"reported_by,omitempty"` // peer that delivered the notice ("" when decided here)
	Notice     string             `json:"-"`                     // hex of the signed notice
	ID         string             `json:"id"`                    // hex of the request's nonce
}

// EmergencyAnswer is what a custodian's node returns for a request: the
// pack's block (so the clinician can check it and find the other
// custodians) and, per local custodian that gives its share, the share
// encrypted to the clinician.
type EmergencyAnswer struct {
	Decision Decision
	Block    []byte
	Shares   []GivenShare
}

// GivenShare is one share given to a clinician.
type GivenShare struct {
	Custodian protocol.AccountID
	Index     uint64
	Share     []byte // age file of the 32-byte value to the clinician's recipient
}

// AnswerEmergency decides a signed request raw as this node's custodians
// (keys returns an unlocked custodian's keys, or an error when locked),
// with role what attestations say of the clinician. Every decision but a
// malformed or stale request is recorded as an EmergencyUse and an audit
// event (kind emergency), and queued as notices to the pack's Notify
// peers; peer is the node that asked.
func (r *Repo) AnswerEmergency(ctx context.Context, raw []byte, peer string, role EmergencyRole, keys func(protocol.AccountID) (*Keys, error)) (EmergencyAnswer, error) {
	q, err := protocol.DecodeEmergencyRequest(raw)
	if err != nil {
		return EmergencyAnswer{}, err
	}
	now := r.now()
	patient := q.PatientID()
	r.emergency.mu.Lock()
	defer r.emergency.mu.Unlock()
	f := emergencyFacts{created: time.UnixMilli(q.Created), asker: q.ClinicianID(), patient: patient, role: role}
	if f.replay, err = r.ds.Has(ctx, keyNonce(q.Nonce)); err != nil {
		return EmergencyAnswer{}, err
	}
	if f.retired, err = r.signerRetired(ctx, q.Clinician, q.Clinician); err != nil {
		return EmergencyAnswer{}, err
	}
	pack, block, err := r.heldPack(ctx, patient, q.Pack, now)
	if err != nil {
		return EmergencyAnswer{}, err
	}
	if pack != nil {
		f.pack = pack
		for _, c := range pack.Custodians() {
			if ok, err := r.isLocal(ctx, c); err != nil {
				return EmergencyAnswer{}, err
			} else if ok {
				f.held = append(f.held, c)
			}
		}
		if f.ended, err = r.ds.Has(ctx, keyEnded(patient, pack.ID)); err != nil {
			return EmergencyAnswer{}, err
		}
		if _, err := getJSON(ctx, r.ds, keyFirstUse(patient, pack.ID), &f.firstUse); err != nil {
			return EmergencyAnswer{}, err
		}
	}
	d := emergencyShare(f, now)
	if d.Rule == RuleEmergencyStale {
		return EmergencyAnswer{Decision: d}, nil // not recorded: it may be anyone's old message
	}
	out := EmergencyAnswer{Decision: d}
	if d.Allow {
		rcpt, err := age.ParseX25519Recipient(q.Recipient)
		if err != nil {
			return EmergencyAnswer{}, fmt.Errorf("clinician's recipient: %w", err)
		}
		for _, c := range f.held {
			k, err := keys(c)
			if err != nil {
				continue // locked: this custodian cannot answer now
			}
			s, _ := pack.ShareOf(c)
			val, err := unseal(s.Share, k.decryptor(), protocol.EmergencyScalarSize)
			k.Wipe()
			if err != nil {
				return EmergencyAnswer{}, fmt.Errorf("open the share of %s: %w", c, err)
			}
			enc, err := seal(val, rcpt)
			clear(val)
			if err != nil {
				return EmergencyAnswer{}, err
			}
			out.Shares = append(out.Shares, GivenShare{Custodian: c, Index: s.Index, Share: enc})
		}
		if len(out.Shares) == 0 {
			out.Decision = refuse(RuleEmergencyNotHeld, "every custodian of the pack on this node is locked: unlock one (blockmrs unlock) to answer")
		} else {
			out.Block = block
			if f.firstUse.IsZero() {
				if err := putJSON(ctx, r.ds, keyFirstUse(patient, pack.ID), now); err != nil {
					return EmergencyAnswer{}, err
				}
			}
		}
	}
	if err := r.ds.Put(ctx, keyNonce(q.Nonce), []byte(fmt.Sprint(q.Created))); err != nil {
		return EmergencyAnswer{}, err
	}
	if err := r.recordDecision(ctx, q, raw, pack, f.held, out.Decision, now, keys); err != nil {
		return EmergencyAnswer{}, err
	}
	if err := r.Audit(ctx, AuditEvent{Time: now, Kind: AuditEmergency, Account: q.ClinicianID(), Peer: peer, Subject: patient,
		Rule: out.Decision.Rule, Reason: auditReason(q.Reason, out.Decision.Allow)}); err != nil {
		return EmergencyAnswer{}, fmt.Errorf("audit: %w", err)
	}
	return out, nil
}

// recordDecision keeps the use here and queues a signed notice, by the
// first unlocked custodian that signs with its account key, to the
// pack's Notify peers.
func (r *Repo) recordDecision(ctx context.Context, q *protocol.EmergencyRequest, raw []byte, pack *protocol.EmergencyPack, held []protocol.AccountID, d Decision, now time.Time, keys func(protocol.AccountID) (*Keys, error)) error {
	use := EmergencyUse{Time: now.UTC(), Patient: q.PatientID(), Clinician: q.ClinicianID(), Reason: q.Reason, Given: d.Allow,
		Rule: d.Rule, Why: d.Reason, Requested: time.UnixMilli(q.Created).UTC(), ID: hex.EncodeToString(q.Nonce)}
	var notify []string
	if pack != nil {
		use.Pack = hex.EncodeToString(pack.ID)
		notify = pack.NotifyPeers()
	}
	for _, c := range held {
		if use.Custodian == "" {
			use.Custodian = c
		}
		k, err := keys(c)
		if err != nil {
			continue
		}
		if k.Successor() {
			// A notice names its signing key as the custodian: one a
			// successor key signs is refused by the patient's node, so
			// another custodian here signs it, or none is sent.
			k.Wipe()
			continue
		}
		n := &protocol.EmergencyNotice{Request: raw, Given: d.Allow, Rule: string(d.Rule), Decided: now.UnixMilli()}
		if pack != nil {
			n.Pack = pack.ID
		}
		enc, err := n.Sign(k.Sign)
		k.Wipe()
		if err != nil {
			return err
		}
		use.Custodian, use.Notice = c, hex.EncodeToString(enc)
		break
	}
	if err := putJSON(ctx, r.ds, keyUse(use.Patient, now, use.ID), use); err != nil {
		return err
	}
	if use.Notice != "" && len(notify) > 0 {
		if err := putJSON(ctx, r.ds, keyNoticeOut(use.ID), noticeOut{Notice: use.Notice, Peers: notify}); err != nil {
			return err
		}
		r.kickEmergency()
	}
	return nil
}

type noticeOut struct {
	Notice string   `json:"notice"` // hex
	Peers  []string `json:"peers"`  // still to deliver to
}

// PendingNotice is a notice still to deliver to some peers.
type PendingNotice struct {
	ID     string
	Notice []byte
	Peers  []string
}

// PendingEmergencyNotices lists the notices not yet delivered everywhere.
func (r *Repo) PendingEmergencyNotices(ctx context.Context) ([]PendingNotice, error) {
	keys, err := listKeys(ctx, r.ds, "/keyshare/emergency/notice-out/")
	if err != nil {
		return nil, err
	}
	var out []PendingNotice
	for _, k := range keys {
		var n noticeOut
		if _, err := getJSON(ctx, r.ds, k, &n); err != nil {
			return nil, err
		}
		raw, err := hex.DecodeString(n.Notice)
		if err != nil {
			return nil, err
		}
		out = append(out, PendingNotice{ID: k.BaseNamespace(), Notice: raw, Peers: n.Peers})
	}
	return out, nil
}

// NoticeDelivered records that peer took notice id.
func (r *Repo) NoticeDelivered(ctx context.Context, id, peer string) error {
	r.emergency.mu.Lock()
	defer r.emergency.mu.Unlock()
	var n noticeOut
	found, err := getJSON(ctx, r.ds, keyNoticeOut(id), &n)
	if err != nil || !found {
		return err
	}
	n.Peers = slices.DeleteFunc(n.Peers, func(p string) bool { return p == peer })
	if len(n.Peers) == 0 {
		return r.ds.Delete(ctx, keyNoticeOut(id))
	}
	return putJSON(ctx, r.ds, keyNoticeOut(id), n)
}

// ReceiveEmergencyNotice keeps a notice delivered by peer: both
// signatures must hold, and the notice must concern a local account's
// pack and come from one of its custodians, or concern an account this
// node was named to be told about (a guardian's node, which may not hold
// the patient's chain: then the custodian's signature is all it checks).
func (r *Repo) ReceiveEmergencyNotice(ctx context.Context, raw []byte, peer string) (EmergencyUse, error) {
	n, q, err := protocol.DecodeEmergencyNotice(raw)
	if err != nil {
		return EmergencyUse{}, err
	}
	patient := q.PatientID()
	custodian := protocol.AccountIDFromKey(n.Custodian)
	if local, err := r.isLocal(ctx, patient); err != nil {
		return EmergencyUse{}, err
	} else if local {
		packs, err := r.EmergencyPacks(ctx, patient)
		if err != nil {
			return EmergencyUse{}, err
		}
		if !slices.ContainsFunc(packs, func(p EmergencyPackInfo) bool {
			return p.ID == hex.EncodeToString(n.Pack) && slices.Contains(p.Custodians, custodian)
		}) {
			return EmergencyUse{}, fmt.Errorf("notice from %s, which is no custodian of that pack of %s", custodian, patient)
		}
	}
	if retired, err := r.signerRetired(ctx, n.Custodian, n.Custodian); err != nil {
		return EmergencyUse{}, err
	} else if retired {
		return EmergencyUse{}, fmt.Errorf("notice signed by %s's account key, which its chain retired: the device that signed no longer acts for it", custodian)
	}
	use := EmergencyUse{Time: time.UnixMilli(n.Decided).UTC(), Patient: patient, Pack: hex.EncodeToString(n.Pack), Clinician: q.ClinicianID(),
		Custodian: custodian, Reason: q.Reason, Given: n.Given, Rule: Rule(n.Rule), Requested: time.UnixMilli(q.Created).UTC(),
		ReportedBy: peer, Notice: hex.EncodeToString(raw), ID: hex.EncodeToString(q.Nonce) + "-" + string(custodian)}
	if err := putJSON(ctx, r.ds, keyUse(patient, use.Time, use.ID), use); err != nil {
		return EmergencyUse{}, err
	}
	if err := r.Audit(ctx, AuditEvent{Time: use.Time, Kind: AuditEmergency, Account: use.Clinician, Subject: patient,
		Rule: use.Rule, Reason: auditReason(use.Reason, use.Given), ReportedBy: peer}); err != nil {
		return EmergencyUse{}, fmt.Errorf("audit: %w", err)
	}
	r.notifyEmergencyUse(use)
	return use, nil
}

// auditReason is the audit event's reason for an emergency request.
func auditReason(reason string, given bool) string {
	if given {
		return "emergency access: " + reason
	}
	return "emergency access refused: " + reason
}

// EmergencyUses lists the recorded uses of patient's packs (every
// patient's when patient is ""), newest first.
func (r *Repo) EmergencyUses(ctx context.Context, patient protocol.AccountID) ([]EmergencyUse, error) {
	prefix := "/keyshare/emergency/use/"
	if patient != "" {
		prefix += string(patient) + "/"
	}
	keys, err := listKeys(ctx, r.ds, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]EmergencyUse, 0, len(keys))
	for _, k := range keys {
		var u EmergencyUse
		if _, err := getJSON(ctx, r.ds, k, &u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	if len(out) > MaxEmergencyUses {
		out = out[:MaxEmergencyUses]
	}
	return out, nil
}

// EmergencyRoleOf applies the role proof a clinician's node sent (its
// first block and the chains of the clinics and authorities attesting
// it; attest_proof.go) and says whether id is a verified clinician
// attested for emergency access, at now.
func (r *Repo) EmergencyRoleOf(ctx context.Context, id protocol.AccountID, proof [][]byte, now time.Time) (EmergencyRole, error) {
	if len(proof) > 0 {
		if _, _, err := r.ApplyRoleProof(ctx, id, proof); err != nil {
			return EmergencyRole{Why: "role proof: " + err.Error()}, nil
		}
	}
	rp, err := r.VerifiedRole(ctx, id, protocol.RoleClinician, now)
	if err != nil {
		return EmergencyRole{Why: err.Error()}, nil
	}
	return EmergencyRole{Verified: rp.Verified, Emergency: rp.Verified && rp.Emergency, Why: rp.Why}, nil
}

// NewEmergencyRequest signs k's request for patient's pack (empty id:
// the latest live one) with reason.
func (r *Repo) NewEmergencyRequest(k *Keys, patient protocol.AccountID, pack []byte, reason string) ([]byte, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, errors.New("a reason is required: it is recorded and shown to the patient")
	}
	if k.Successor() {
		return nil, fmt.Errorf("%s signs with a successor key, and an emergency request names its signing key as the clinician: it cannot ask yet (PROTOCOL.md §10.6)", k.ID)
	}
	nonce := make([]byte, protocol.RequestNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	q := &protocol.EmergencyRequest{Recipient: k.Age.Recipient().String(), Patient: keyOf(patient), Pack: pack,
		Reason: reason, Created: r.now().UnixMilli(), Nonce: nonce}
	return q.Sign(k.Sign)
}

// OpenedEmergency is a summary a clinician opened.
type OpenedEmergency struct {
	Pack    EmergencyPackInfo
	Summary []byte
	From    []protocol.AccountID // custodians whose shares opened it
}

// OpenEmergency checks a pack block (signed by patient) and opens its
// summary with the given shares (each an age file to k), ignoring those
// that do not decrypt or do not match the commitments.
func (r *Repo) OpenEmergency(k *Keys, patient protocol.AccountID, block []byte, shares []GivenShare) (OpenedEmergency, error) {
	b, err := protocol.DecodeBlock(block)
	if err != nil {
		return OpenedEmergency{}, fmt.Errorf("pack block: %w", err)
	}
	if b.AuthorID() != patient {
		return OpenedEmergency{}, fmt.Errorf("pack block is signed by %s, not by the patient %s", b.AuthorID(), patient)
	}
	var pack *protocol.EmergencyPack
	for _, e := range b.Entries {
		if p, ok := e.Body.(*protocol.EmergencyPack); ok {
			pack = p
		}
	}
	if pack == nil {
		return OpenedEmergency{}, errors.New("pack block holds no emergency pack")
	}
	vals := map[uint64][]byte{}
	var from []protocol.AccountID
	for _, s := range shares {
		mine, ok := pack.ShareOf(s.Custodian)
		if !ok || mine.Index != s.Index {
			continue
		}
		v, err := unseal(s.Share, k.Age, protocol.EmergencyScalarSize)
		if err != nil || pack.CheckEmergencyShare(s.Index, v) != nil {
			continue
		}
		if _, dup := vals[s.Index]; !dup {
			vals[s.Index] = v
			from = append(from, s.Custodian)
		}
	}
	if uint64(len(vals)) < pack.Threshold {
		return OpenedEmergency{}, fmt.Errorf("%d valid share(s) of the %d needed", len(vals), pack.Threshold)
	}
	summary, err := pack.OpenEmergency(vals)
	if err != nil {
		return OpenedEmergency{}, err
	}
	return OpenedEmergency{Pack: packInfo(b, protocol.BlockCID(block), pack, r.now()), Summary: summary, From: from}, nil
}

// emergencyState is the Repo's emergency bookkeeping: a lock over the
// read-check-write of nonces, first uses and held packs, and the watchers
// told when something is to be delivered or a use is recorded.
type emergencyState struct {
	mu      sync.Mutex
	watchMu sync.Mutex
	kick    func()
	uses    map[int]func(EmergencyUse)
	next    int
}

// WatchEmergency makes r call kick (which must not block) when a deposit
// or a notice is queued for delivery. It returns a function that stops
// the calls; one watcher per repo.
func (r *Repo) WatchEmergency(kick func()) func() {
	r.emergency.watchMu.Lock()
	defer r.emergency.watchMu.Unlock()
	r.emergency.kick = kick
	return func() {
		r.emergency.watchMu.Lock()
		defer r.emergency.watchMu.Unlock()
		r.emergency.kick = nil
	}
}

func (r *Repo) kickEmergency() {
	r.emergency.watchMu.Lock()
	kick := r.emergency.kick
	r.emergency.watchMu.Unlock()
	if kick != nil {
		kick()
	}
}

// OnEmergencyUse calls fn (which must not block) for every notice of an
// emergency use this repo receives. It returns a function that stops the
// calls.
func (r *Repo) OnEmergencyUse(fn func(EmergencyUse)) func() {
	r.emergency.watchMu.Lock()
	defer r.emergency.watchMu.Unlock()
	if r.emergency.uses == nil {
		r.emergency.uses = map[int]func(EmergencyUse){}
	}
	id := r.emergency.next
	r.emergency.next++
	r.emergency.uses[id] = fn
	return func() {
		r.emergency.watchMu.Lock()
		defer r.emergency.watchMu.Unlock()
		delete(r.emergency.uses, id)
	}
}

func (r *Repo) notifyEmergencyUse(u EmergencyUse) {
	r.emergency.watchMu.Lock()
	fns := make([]func(EmergencyUse), 0, len(r.emergency.uses))
	for _, fn := range r.emergency.uses {
		fns = append(fns, fn)
	}
	r.emergency.watchMu.Unlock()
	for _, fn := range fns {
		fn(u)
	}
}
