package keyshare

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"

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
	roles, err := r.declaredBy(ctx, peerID)
	return roles.acting, err
}

// ReplicatedBy returns the accounts whose chains declare the node with
// peer ID peerID as their replica.
func (r *Repo) ReplicatedBy(ctx context.Context, peerID string) ([]protocol.AccountID, error) {
	roles, err := r.declaredBy(ctx, peerID)
	return roles.replicating, err
}

// The peer index maps every node an account declares to that account, so
// that the accounts a peer acts for are one prefix read, however many
// accounts the repo knows:
//
//	/keyshare/peer/<peer ID>/<account ID> → "device" or "replica"
//
// It is written in the batch that applies the device entries (commit).

const peerIndexPrefix = "/keyshare/peer/"

func keyPeerAccount(peerID string, id protocol.AccountID) datastore.Key {
	return datastore.NewKey(peerIndexPrefix + peerID + "/" + string(id))
}

func peerIndexValue(d DeviceInfo) []byte {
	if d.Replica {
		return []byte("replica")
	}
	return []byte("device")
}

// indexDevices writes to w the peer-index changes of account id whose
// declared nodes went from before to after.
func indexDevices(ctx context.Context, w datastore.Write, id protocol.AccountID, before, after []DeviceInfo) error {
	for _, d := range before {
		if !slices.ContainsFunc(after, func(x DeviceInfo) bool { return x.PeerID == d.PeerID }) {
			if err := w.Delete(ctx, keyPeerAccount(d.PeerID, id)); err != nil {
				return err
			}
		}
	}
	for _, d := range after {
		if err := w.Put(ctx, keyPeerAccount(d.PeerID, id), peerIndexValue(d)); err != nil {
			return err
		}
	}
	return nil
}

// keyPeerIndexDone marks a repo whose peer index covers every account
// (repos from before the index get it on open).
var keyPeerIndexDone = datastore.NewKey("/keyshare/peer-index-complete")

// rebuildPeerIndex writes the peer index from the account states. With
// onlyIfMissing it does so once, for repos from before the index; Verify
// calls it to compare and repair, and gets the differences found.
func (r *Repo) rebuildPeerIndex(ctx context.Context, onlyIfMissing bool) (problems []string, err error) {
	if onlyIfMissing {
		if done, err := r.ds.Has(ctx, keyPeerIndexDone); err != nil || done {
			return nil, err
		}
	}
	want := map[datastore.Key]string{}
	accts, err := listKeys(ctx, r.ds, "/keyshare/acct/")
	if err != nil {
		return nil, err
	}
	for _, k := range accts {
		var st accountState
		if _, err := getJSON(ctx, r.ds, k, &st); err != nil {
			return nil, err
		}
		for _, d := range st.Devices {
			want[keyPeerAccount(d.PeerID, protocol.AccountID(k.BaseNamespace()))] = string(peerIndexValue(d))
		}
	}
	res, err := r.ds.Query(ctx, query.Query{Prefix: peerIndexPrefix})
	if err != nil {
		return nil, fmt.Errorf("peer index: %w", err)
	}
	have, err := res.Rest()
	if err != nil {
		return nil, fmt.Errorf("peer index: %w", err)
	}
	batch, err := r.ds.Batch(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range have {
		k := datastore.NewKey(e.Key)
		if v, ok := want[k]; ok && v == string(e.Value) {
			delete(want, k)
			continue
		}
		if _, ok := want[k]; !ok {
			problems = append(problems, "peer index holds an entry no chain supports: "+strings.TrimPrefix(e.Key, peerIndexPrefix))
			if err := batch.Delete(ctx, k); err != nil {
				return nil, err
			}
		}
	}
	for k, v := range want {
		problems = append(problems, "peer index misses "+strings.TrimPrefix(k.String(), peerIndexPrefix))
		if err := batch.Put(ctx, k, []byte(v)); err != nil {
			return nil, err
		}
	}
	if err := batch.Put(ctx, keyPeerIndexDone, nil); err != nil {
		return nil, err
	}
	done := r.cache.writing()
	err = batch.Commit(ctx)
	done()
	if err != nil {
		return nil, fmt.Errorf("peer index: %w", err)
	}
	sort.Strings(problems)
	return problems, nil
}

// declaredBy returns, from the peer index (one prefix read: it runs for
// every block a peer asks for), the accounts that declare the peer as
// acting for them and those that declare it as their replica.
func (r *Repo) declaredBy(ctx context.Context, peerID string) (roles peerRoles, err error) {
	if peerID == "" || strings.Contains(peerID, "/") {
		return peerRoles{}, nil
	}
	if cached, ok := cacheGet(&r.cache, &r.cache.roles, peerID); ok {
		return cached, nil
	}
	gen := r.cache.generation()
	defer func() {
		if err == nil {
			cachePut(&r.cache, &r.cache.roles, gen, peerID, roles)
		}
	}()
	prefix := peerIndexPrefix + peerID + "/"
	res, err := r.ds.Query(ctx, query.Query{Prefix: prefix})
	if err != nil {
		return roles, fmt.Errorf("peer index: %w", err)
	}
	entries, err := res.Rest()
	if err != nil {
		return roles, fmt.Errorf("peer index: %w", err)
	}
	for _, e := range entries {
		id := protocol.AccountID(strings.TrimPrefix(e.Key, prefix))
		if string(e.Value) == "replica" {
			roles.replicating = append(roles.replicating, id)
		} else {
			roles.acting = append(roles.acting, id)
		}
	}
	return roles, nil
}

// SetNodeID tells the repo the peer ID (text form) of the node it runs
// in, so that the access policy counts the accounts that declare this node
// their replica among those the node vouches for. Without it the node
// vouches only for its own accounts.
func (r *Repo) SetNodeID(peerID string) {
	if old := r.nodeID.Swap(&peerID); old == nil || *old != peerID {
		r.cache.invalidate() // the vouch set depends on it
	}
}

// vouchSet returns the accounts this node vouches for: its own accounts
// and those that declare it as their replica.
func (r *Repo) vouchSet(ctx context.Context) (vouchSet, error) {
	r.cache.mu.Lock()
	cached, gen := r.cache.vouch, r.cache.gen
	if r.cache.writers > 0 {
		cached = nil
	}
	r.cache.mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	keys, err := listKeys(ctx, r.ds, "/keyshare/local/")
	if err != nil {
		return nil, err
	}
	v := vouchSet{}
	for _, k := range keys {
		v[protocol.AccountID(k.BaseNamespace())] = vouchLocal
	}
	if self := r.nodeID.Load(); self != nil {
		roles, err := r.declaredBy(ctx, *self)
		if err != nil {
			return nil, err
		}
		for _, id := range roles.replicating {
			if v[id] != vouchLocal {
				v[id] = vouchReplica
			}
		}
	}
	r.cache.mu.Lock()
	if r.cache.gen == gen && r.cache.writers == 0 {
		r.cache.vouch = v
	}
	r.cache.mu.Unlock()
	return v, nil
}
