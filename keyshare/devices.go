package keyshare

import (
	"context"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// DeviceInfo is a node an account declared as acting for it.
type DeviceInfo struct {
	PeerID string `json:"peer_id"`
	Name   string `json:"name,omitempty"`
}

// setDevice applies a device entry: declare (or rename) or withdraw.
func (st *accountState) setDevice(d *protocol.Device) {
	id := d.PeerID()
	st.Devices = slices.DeleteFunc(st.Devices, func(x DeviceInfo) bool { return x.PeerID == id })
	if !d.Remove {
		st.Devices = append(st.Devices, DeviceInfo{PeerID: id, Name: d.Name})
	}
}

// SetDevice declares on k's chain that the node with peer ID peerID acts
// for k's account (remove=false), or no longer does (remove=true).
func (r *Repo) SetDevice(ctx context.Context, k *Keys, peerID, name string, remove bool) (cid.Cid, error) {
	raw, err := protocol.ParsePeerID(peerID)
	if err != nil {
		return cid.Undef, err
	}
	d := &protocol.Device{Peer: raw, Name: name, Remove: remove}
	if err := d.Validate(); err != nil {
		return cid.Undef, err
	}
	info, err := r.Account(ctx, k.ID)
	if err != nil {
		return cid.Undef, err
	}
	declared := slices.ContainsFunc(info.Devices, func(x DeviceInfo) bool { return x.PeerID == d.PeerID() })
	if remove && !declared {
		return cid.Undef, fmt.Errorf("device %s is not declared for %s", d.PeerID(), k.ID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appendBlock(ctx, k, []protocol.Entry{protocol.NewEntry(d)})
}

// AccountsOfPeer returns the accounts whose chains declare the node with
// peer ID peerID (text form) as acting for them.
func (r *Repo) AccountsOfPeer(ctx context.Context, peerID string) ([]protocol.AccountID, error) {
	accts, err := r.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	var out []protocol.AccountID
	for _, a := range accts {
		if slices.ContainsFunc(a.Devices, func(x DeviceInfo) bool { return x.PeerID == peerID }) {
			out = append(out, a.ID)
		}
	}
	return out, nil
}
