package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Devices and replicas: the nodes an account declares, signed, on its
// chain (keyshare.Repo.SetDevice, SetReplica).

// NodeList is the result of ListDevices.
type NodeList struct {
	// Account is the account whose declarations these are.
	Account protocol.AccountID `json:"account"`
	// Devices are the nodes that act for the account, in declaration order.
	Devices []keyshare.DeviceInfo `json:"devices"`
	// Replicas are the nodes that only keep the account's chain and
	// ciphertext available, in declaration order.
	Replicas []keyshare.DeviceInfo `json:"replicas"`
}

// ListDevices reports the devices and replicas account a declares.
func ListDevices(a keyshare.AccountInfo) NodeList {
	out := NodeList{Account: a.ID, Devices: []keyshare.DeviceInfo{}, Replicas: []keyshare.DeviceInfo{}}
	for _, d := range a.Devices {
		if d.Replica {
			out.Replicas = append(out.Replicas, d)
		} else {
			out.Devices = append(out.Devices, d)
		}
	}
	return out
}

// DeclareRequest declares a node as a device or a replica.
type DeclareRequest struct {
	// PeerID is the node's libp2p peer ID (12D3KooW… or Qm…).
	PeerID string `json:"peer_id"`
	// Name labels the node for people (laptop, clinic server).
	Name string `json:"name,omitempty"`
	// Replica declares a replica (keeps the chain and ciphertext
	// available, acts for nobody) rather than a device.
	Replica bool `json:"replica,omitempty"`
}

// WithdrawRequest withdraws a device or replica declaration.
type WithdrawRequest struct {
	// PeerID is the declared node's peer ID.
	PeerID string `json:"peer_id"`
	// Replica withdraws a replica rather than a device.
	Replica bool `json:"replica,omitempty"`
}

// NodeSet is the result of Declare and Withdraw.
type NodeSet struct {
	// Account is the acting account, on whose chain the entry is.
	Account protocol.AccountID `json:"account"`
	// PeerID is the node's peer ID.
	PeerID string `json:"peer_id"`
	// Replica is true for a replica, false for a device.
	Replica bool `json:"replica"`
	// Removed is true for a withdrawal.
	Removed bool `json:"removed"`
	// Block is the chain block holding the device entry.
	Block string `json:"block"`
}

// Declare signs on k's chain that node req.PeerID is its device or
// replica (or renames it).
func Declare(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req DeclareRequest) (NodeSet, error) {
	return setNode(ctx, repo, k, req.PeerID, req.Name, false, req.Replica)
}

// Withdraw signs on k's chain that node req.PeerID no longer is its
// device or replica. A node not declared so is ErrNotFound.
func Withdraw(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req WithdrawRequest) (NodeSet, error) {
	return setNode(ctx, repo, k, req.PeerID, "", true, req.Replica)
}

func setNode(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, peerID, name string, remove, replica bool) (NodeSet, error) {
	raw, err := protocol.ParsePeerID(peerID)
	if err != nil {
		return NodeSet{}, invalidf("peer_id %q: %v", truncate(peerID), err)
	}
	d := &protocol.Device{Peer: raw, Name: name, Remove: remove, Replica: replica}
	if err := d.Validate(); err != nil {
		return NodeSet{}, invalidf("%v", err)
	}
	kind := "device"
	if replica {
		kind = "replica"
	}
	if remove {
		info, err := repo.Account(ctx, k.ID)
		if err != nil {
			return NodeSet{}, err
		}
		if !declared(info, d.PeerID(), replica) {
			return NodeSet{}, fmt.Errorf("%s %s is not declared for %s: %w", kind, d.PeerID(), k.ID, ErrNotFound)
		}
	}
	set := repo.SetDevice
	if replica {
		set = repo.SetReplica
	}
	block, err := set(ctx, k, peerID, name, remove)
	if err != nil {
		return NodeSet{}, err
	}
	return NodeSet{Account: k.ID, PeerID: d.PeerID(), Replica: replica, Removed: remove, Block: block.String()}, nil
}

func declared(a keyshare.AccountInfo, peerID string, replica bool) bool {
	for _, d := range a.Devices {
		if d.PeerID == peerID && d.Replica == replica {
			return true
		}
	}
	return false
}

// MaxLogLimit bounds LogArgs.Limit.
const MaxLogLimit = 1000

// LogArgs selects the chain Log shows, and which part of it.
type LogArgs struct {
	// Account is any account the repo knows (ID, name or ID suffix),
	// contacts included; empty is the repo's default account.
	Account string `json:"account,omitempty"`
	// Before, when not 0, keeps only the entries of blocks with a lower
	// sequence number: the page before an entry of block Before.
	Before uint64 `json:"before,omitempty"`
	// Limit, when not 0, keeps only the newest blocks that hold at least
	// Limit entries (a block's entries are never split); at most
	// MaxLogLimit.
	Limit int `json:"limit,omitempty"`
}

// Log returns the entries of an account's chain, oldest first
// (keyshare.Repo.LogPage): all of them, or the page args select. The
// oldest entry's seq is the Before of the next older page; a page holding
// an entry of block 0 is the last.
func Log(ctx context.Context, repo *keyshare.Repo, args LogArgs) ([]keyshare.LogEntry, error) {
	if args.Limit < 0 || args.Limit > MaxLogLimit {
		return nil, invalidf("limit: %d is not between 0 and %d", args.Limit, MaxLogLimit)
	}
	info, err := repo.Resolve(ctx, args.Account, args.Account == "")
	if errors.Is(err, keyshare.ErrUnknownAccount) {
		return nil, fmt.Errorf("account: %w: %w", ErrNotFound, err)
	}
	if err != nil {
		return nil, invalidf("account: %v", err)
	}
	entries, err := repo.LogPage(ctx, info.ID, args.Before, args.Limit)
	if err != nil {
		return nil, fmt.Errorf("log of %s: %w", info.ID, err)
	}
	if entries == nil {
		entries = []keyshare.LogEntry{}
	}
	return entries, nil
}
