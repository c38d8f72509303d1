package keyshare

import (
	"context"
	"encoding/hex"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Delivery of a patient's packs and ends to custodians, as her node sees
// it: what is still to send (EmergencyDeposits) and, per pack and
// custodian, whether it arrived (EmergencyDelivery).

// Delivery states of a pack (or its end) to one custodian.
const (
	// DeliveryDelivered: the custodian's node took the pack (for an
	// ended pack: took its end, and dropped the pack).
	DeliveryDelivered = "delivered"
	// DeliveryWaiting: not taken yet; the node retries while it runs,
	// and after a restart.
	DeliveryWaiting = "waiting"
	// DeliveryNotNeeded: the pack was ended before it reached the
	// custodian, so neither it nor its end is sent.
	DeliveryNotNeeded = "not needed"
	// DeliveryElsewhere: another device of the account appended the
	// block and delivers it; this node cannot tell.
	DeliveryElsewhere = "other device"
)

// CustodianDelivery is where a pack stands with one custodian.
type CustodianDelivery struct {
	Custodian protocol.AccountID `json:"custodian"`
	State     string             `json:"state"` // DeliveryDelivered, DeliveryWaiting, DeliveryNotNeeded, DeliveryElsewhere
}

// ownPacks indexes the emergency blocks this repo appended for an
// account.
type ownPacks struct {
	cids      []cid.Cid
	blocks    []*protocol.Block
	shares    map[string][]protocol.EmergencyShare // pack ID → its shares
	packBlock map[string]cid.Cid                   // pack ID → the block that set it up
	endBlock  map[string]cid.Cid                   // pack ID → the block that ended it
}

func (r *Repo) ownPacks(ctx context.Context, id protocol.AccountID) (ownPacks, error) {
	cids, blocks, err := r.ownEmergencyBlocks(ctx, id)
	if err != nil {
		return ownPacks{}, err
	}
	o := ownPacks{cids: cids, blocks: blocks, shares: map[string][]protocol.EmergencyShare{},
		packBlock: map[string]cid.Cid{}, endBlock: map[string]cid.Cid{}}
	for i, b := range blocks {
		for _, e := range b.Entries {
			switch body := e.Body.(type) {
			case *protocol.EmergencyPack:
				o.shares[string(body.ID)] = body.Shares
				o.packBlock[string(body.ID)] = cids[i]
			case *protocol.EmergencyEnd:
				if _, seen := o.endBlock[string(body.ID)]; !seen {
					o.endBlock[string(body.ID)] = cids[i]
				}
			}
		}
	}
	return o, nil
}

// EmergencyDelivery fills in, for each of id's packs, where it stands
// with each custodian (CustodianDelivery), as this node delivers it.
func (r *Repo) EmergencyDelivery(ctx context.Context, id protocol.AccountID, packs []EmergencyPackInfo) error {
	own, err := r.ownPacks(ctx, id)
	if err != nil {
		return err
	}
	for i := range packs {
		p := &packs[i]
		raw, err := hex.DecodeString(p.ID)
		if err != nil {
			return err
		}
		pb, mine := own.packBlock[string(raw)]
		eb, ended := own.endBlock[string(raw)]
		p.Delivery = make([]CustodianDelivery, 0, len(p.Custodians))
		for _, c := range p.Custodians {
			d := CustodianDelivery{Custodian: c, State: DeliveryElsewhere}
			if mine {
				took, err := r.ds.Has(ctx, keyDeposited(pb, c))
				if err != nil {
					return err
				}
				switch {
				case !ended && took:
					d.State = DeliveryDelivered
				case !ended:
					d.State = DeliveryWaiting
				case !took:
					d.State = DeliveryNotNeeded
				default:
					endTook, err := r.ds.Has(ctx, keyDeposited(eb, c))
					if err != nil {
						return err
					}
					d.State = DeliveryWaiting
					if endTook {
						d.State = DeliveryDelivered
					}
				}
			}
			p.Delivery = append(p.Delivery, d)
		}
	}
	return nil
}
