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
	acting, _, err := r.declaredBy(ctx, peerID)
	return acting, err
}

// ReplicatedBy returns the accounts whose chains declare the node with
// peer ID peerID as their replica.
func (r *Repo) ReplicatedBy(ctx context.Context, peerID string) ([]protocol.AccountID, error) {
	_, replicating, err := r.declaredBy(ctx, peerID)
	return replicating, err
}

// declaredBy returns, in one pass over the chain states (no key files are
// read: it runs for every block a peer asks for), the accounts that
// declare the peer as acting for them and those that declare it as their
// replica.
func (r *Repo) declaredBy(ctx context.Context, peerID string) (acting, replicating []protocol.AccountID, err error) {
	keys, err := listKeys(ctx, r.ds, "/keyshare/acct/")
	if err != nil {
		return nil, nil, err
	}
	for _, k := range keys {
		var st accountState
		if _, err := getJSON(ctx, r.ds, k, &st); err != nil {
			return nil, nil, err
		}
		for _, d := range st.Devices {
			if d.PeerID != peerID {
				continue
			}
			id := protocol.AccountID(k.BaseNamespace())
			if d.Replica {
				replicating = append(replicating, id)
			} else {
				acting = append(acting, id)
			}
		}
	}
	return acting, replicating, nil
}
