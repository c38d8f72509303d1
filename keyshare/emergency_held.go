package keyshare

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
)

// What a custodian's node keeps, and drops (policy emergencyKeep).
//
// A custodian's node keeps, per patient, the newest pack she set up: a
// mark remembers the newest chain position of a pack of hers it saw
// (delivered by her node, or on her chain when this node holds it), and
// a tombstone each pack she ended. A pack older than the mark, or ended,
// is dropped at once and refused when delivered again, whoever delivers
// it: only blocks signed by the patient move the mark or make a
// tombstone, since everything held is keyed by the block's signer.

func keyHeldMark(patient protocol.AccountID) datastore.Key {
	return datastore.NewKey("/keyshare/emergency/mark/" + string(patient))
}

// heldMark is what a custodian's node remembers of a patient's packs.
type heldMark struct {
	Seq      uint64 `json:"seq"`       // chain position of the newest pack seen
	ID       string `json:"id"`        // its ID (hex); "" none yet
	ChainSeq uint64 `json:"chain_seq"` // 1 + the head position of her chain when last read here; 0 never
}

// note moves the mark to a pack at seq if it is newer.
func (m *heldMark) note(seq uint64, id []byte) {
	if m.ID == "" || seq > m.Seq {
		m.Seq, m.ID = seq, hex.EncodeToString(id)
	}
}

// loadMark returns patient's mark, brought up to date with her chain
// when this repo holds it (a verified chain: a custodian that syncs it,
// such as a guardian or her GP, learns an end or a new setup from it
// even before her node delivers the block). The caller holds
// r.emergency.mu and stores the mark.
func (r *Repo) loadMark(ctx context.Context, patient protocol.AccountID) (heldMark, error) {
	var m heldMark
	if _, err := getJSON(ctx, r.ds, keyHeldMark(patient), &m); err != nil {
		return m, err
	}
	st, err := r.state(ctx, patient)
	if errors.Is(err, ErrUnknownAccount) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	if !st.head().Defined() || st.Seq+1 == m.ChainSeq {
		return m, nil
	}
	// Only the blocks added since the last read: chains only grow.
	for seq := m.ChainSeq; seq <= st.Seq; seq++ {
		if err := ctx.Err(); err != nil {
			return m, err
		}
		c, ok, err := r.blockAt(ctx, patient, seq)
		if err != nil || !ok {
			return m, errors.Join(err, fmt.Errorf("block %d of %s missing", seq, patient))
		}
		b, err := r.readBlock(ctx, c)
		if err != nil {
			return m, err
		}
		for _, e := range b.Entries {
			switch body := e.Body.(type) {
			case *protocol.EmergencyPack:
				m.note(b.Seq, body.ID)
			case *protocol.EmergencyEnd:
				if err := r.tombstone(ctx, patient, body.ID, b.Time); err != nil {
					return m, err
				}
			}
		}
	}
	m.ChainSeq = st.Seq + 1
	return m, nil
}

// tombstone records that patient ended pack id (at blockTime, ms).
func (r *Repo) tombstone(ctx context.Context, patient protocol.AccountID, id []byte, blockTime int64) error {
	if has, err := r.ds.Has(ctx, keyEnded(patient, id)); err != nil || has {
		return err
	}
	return putJSON(ctx, r.ds, keyEnded(patient, id), time.UnixMilli(blockTime))
}

// holdFacts gathers what emergencyKeep needs about pack, in block b of
// the patient, given her mark.
func (r *Repo) holdFacts(ctx context.Context, b *protocol.Block, p *protocol.EmergencyPack, m heldMark) (emergencyHoldFacts, error) {
	patient := b.AuthorID()
	f := emergencyHoldFacts{patient: patient, seq: b.Seq, until: time.UnixMilli(p.Until), newest: m.Seq,
		newer: m.ID != "" && m.ID != hex.EncodeToString(p.ID)}
	for _, c := range p.Custodians() {
		ok, err := r.isLocal(ctx, c)
		if err != nil {
			return f, err
		}
		f.mine = f.mine || ok
	}
	var err error
	f.ended, err = r.ds.Has(ctx, keyEnded(patient, p.ID))
	return f, err
}

// pruneHeld drops patient's held packs emergencyKeep no longer keeps,
// and stores her mark. The caller holds r.emergency.mu.
func (r *Repo) pruneHeld(ctx context.Context, patient protocol.AccountID, m heldMark) ([]DroppedPack, error) {
	if err := putJSON(ctx, r.ds, keyHeldMark(patient), m); err != nil {
		return nil, err
	}
	keys, err := listKeys(ctx, r.ds, "/keyshare/emergency/held/"+string(patient)+"/")
	if err != nil {
		return nil, err
	}
	now := r.now()
	var out []DroppedPack
	for _, k := range keys {
		raw, err := r.ds.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		pid, err := hex.DecodeString(k.BaseNamespace())
		if err != nil {
			return nil, fmt.Errorf("held pack key %s: %w", k, err)
		}
		b, err := protocol.DecodeBlock(raw)
		if err != nil {
			return nil, fmt.Errorf("held pack %s of %s: %w", k.BaseNamespace(), patient, err)
		}
		p, err := packIn(raw, pid)
		if err != nil {
			return nil, err
		}
		f, err := r.holdFacts(ctx, b, p, m)
		if err != nil {
			return nil, err
		}
		d := emergencyKeep(f, now)
		if d.Allow {
			continue
		}
		if err := r.ds.Delete(ctx, k); err != nil {
			return nil, err
		}
		if err := r.ds.Delete(ctx, keyFirstUse(patient, pid)); err != nil {
			return nil, err
		}
		out = append(out, DroppedPack{Patient: patient, ID: k.BaseNamespace(), Decision: d})
	}
	return out, nil
}

// DroppedPack is a pack a custodian's node stopped holding, and why.
type DroppedPack struct {
	Patient  protocol.AccountID `json:"patient"`
	ID       string             `json:"id"` // hex
	Decision Decision           `json:"decision"`
}

// PruneEmergency drops the held packs the keep rule (emergencyKeep) no
// longer keeps: ended or superseded by the patient's chain as this repo
// holds it, or expired. The node runs it every delivery round.
func (r *Repo) PruneEmergency(ctx context.Context) ([]DroppedPack, error) {
	keys, err := listKeys(ctx, r.ds, "/keyshare/emergency/held/")
	if err != nil {
		return nil, err
	}
	seen := map[protocol.AccountID]bool{}
	var out []DroppedPack
	for _, k := range keys {
		patient := protocol.AccountID(k.Parent().BaseNamespace())
		if seen[patient] {
			continue
		}
		seen[patient] = true
		dropped, err := r.prunePatient(ctx, patient)
		if err != nil {
			return out, fmt.Errorf("prune the packs of %s: %w", patient, err)
		}
		out = append(out, dropped...)
	}
	return out, nil
}

func (r *Repo) prunePatient(ctx context.Context, patient protocol.AccountID) ([]DroppedPack, error) {
	r.emergency.mu.Lock()
	defer r.emergency.mu.Unlock()
	m, err := r.loadMark(ctx, patient)
	if err != nil {
		return nil, err
	}
	return r.pruneHeld(ctx, patient, m)
}
