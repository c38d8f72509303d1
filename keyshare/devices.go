package keyshare

import (
	"context"
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// DeviceInfo is a node an account declared: one that acts for it, or,
// with Replica, one that only keeps its chain and ciphertext available.
type DeviceInfo struct {
	PeerID  string `json:"peer_id"`
	Name    string `json:"name,omitempty"`
	Replica bool   `json:"replica,omitempty"`
}

// setDevice applies a device entry: declare (or rename, or change between
// device and replica) or withdraw.
func (st *accountState) setDevice(d *protocol.Device) {
	id := d.PeerID()
	st.Devices = slices.DeleteFunc(st.Devices, func(x DeviceInfo) bool { return x.PeerID == id })
	if !d.Remove {
		st.Devices = append(st.Devices, DeviceInfo{PeerID: id, Name: d.Name, Replica: d.Replica})
	}
}

// SetDevice declares on k's chain that the node with peer ID peerID acts
// for k's account (remove=false), or no longer does (remove=true).
func (r *Repo) SetDevice(ctx context.Context, k *Keys, peerID, name string, remove bool) (cid.Cid, error) {
	return r.setNode(ctx, k, peerID, name, remove, false)
}

// SetReplica declares on k's chain that the node with peer ID peerID keeps
// k's chain and the ciphertext of k's records available (remove=false),
// or no longer does (remove=true). A replica acts for nobody and can
// decrypt nothing.
func (r *Repo) SetReplica(ctx context.Context, k *Keys, peerID, name string, remove bool) (cid.Cid, error) {
	return r.setNode(ctx, k, peerID, name, remove, true)
}

func (r *Repo) setNode(ctx context.Context, k *Keys, peerID, name string, remove, replica bool) (cid.Cid, error) {
	raw, err := protocol.ParsePeerID(peerID)
	if err != nil {
		return cid.Undef, err
	}
	d := &protocol.Device{Peer: raw, Name: name, Remove: remove, Replica: replica}
	if err := d.Validate(); err != nil {
		return cid.Undef, err
	}
	info, err := r.Account(ctx, k.ID)
	if err != nil {
		return cid.Undef, err
	}
	kind := "device"
	if replica {
		kind = "replica"
	}
	declared := slices.ContainsFunc(info.Devices, func(x DeviceInfo) bool { return x.PeerID == d.PeerID() && x.Replica == replica })
	if remove && !declared {
		return cid.Undef, fmt.Errorf("%s %s is not declared for %s", kind, d.PeerID(), k.ID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appendBlock(ctx, k, []protocol.Entry{protocol.NewEntry(d)})
}

// AccountsOfPeer returns the accounts whose chains declare the node with
// peer ID peerID (text form) as acting for them (replicas excluded).
func (r *Repo) AccountsOfPeer(ctx context.Context, peerID string) ([]protocol.AccountID, error) {
	return r.accountsDeclaring(ctx, peerID, false)
}

// ReplicatedBy returns the accounts whose chains declare the node with
// peer ID peerID as their replica.
func (r *Repo) ReplicatedBy(ctx context.Context, peerID string) ([]protocol.AccountID, error) {
	return r.accountsDeclaring(ctx, peerID, true)
}

func (r *Repo) accountsDeclaring(ctx context.Context, peerID string, replica bool) ([]protocol.AccountID, error) {
	accts, err := r.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	var out []protocol.AccountID
	for _, a := range accts {
		if slices.ContainsFunc(a.Devices, func(x DeviceInfo) bool { return x.PeerID == peerID && x.Replica == replica }) {
			out = append(out, a.ID)
		}
	}
	return out, nil
}
