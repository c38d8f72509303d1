package keyshare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"

	"github.com/blockmrs/blockmrs/protocol"
)

// Datastore keys. Everything keyshare persists lives under /keyshare.
var (
	keyDefault = datastore.NewKey("/keyshare/default")
)

func keyAccount(id protocol.AccountID) datastore.Key {
	return datastore.NewKey("/keyshare/acct/" + string(id))
}
func keyLocal(id protocol.AccountID) datastore.Key {
	return datastore.NewKey("/keyshare/local/" + string(id))
}
func keySeq(id protocol.AccountID, seq uint64) datastore.Key {
	return datastore.NewKey(fmt.Sprintf("/keyshare/seq/%s/%020d", id, seq))
}
func keyFork(id protocol.AccountID, seq uint64) datastore.Key {
	return datastore.NewKey(fmt.Sprintf("/keyshare/forks/%s/%020d", id, seq))
}

// accountState is what the repo knows of one account's chain: its head,
// and the profile as of the head.
type accountState struct {
	Head      string        `json:"head"`
	Seq       uint64        `json:"seq"`
	Time      int64         `json:"time"`
	Name      string        `json:"name"`
	Role      protocol.Role `json:"role"`
	Recipient string        `json:"recipient"`
	// StoppedAt is the sequence number of the first block holding a
	// critical entry this implementation does not understand; entries from
	// there on are not applied. Zero when none (block 0 cannot be one,
	// since it must begin with a profile and its later entries are
	// checked the same way; see applyBlock).
	StoppedAt uint64 `json:"stopped_at,omitempty"`
	// Devices are the nodes (peer IDs, text form) the account declares as
	// acting for it, with the names it gave them.
	Devices     []DeviceInfo `json:"devices,omitempty"`
	StoppedWhy  string       `json:"stopped_why,omitempty"`
	UnknownSeen int          `json:"unknown_entries,omitempty"`
	// Scopes are the standing-grant events of the chain (scope and
	// unscope entries) in chain order; standing.go.
	Scopes []scopeEvent `json:"scopes,omitempty"`
	// attests are the attestation events of the blocks being applied,
	// written by indexAttests when they commit (attest.go).
	attests []attestEvent
	// Guardians are the guardian events of the chain (guardian and
	// unguardian entries) in chain order; guardian.go.
	Guardians []guardianEvent `json:"guardians,omitempty"`
	// Consents are the guardian's answers to appointments (wardaccept and
	// warddecline entries) in chain order; guardian_consent.go.
	Consents []consentEvent `json:"consents,omitempty"`
	// Signing is the chain's signing key after its last succession
	// (succession.go); nil while the account key signs.
	Signing *signingState `json:"signing,omitempty"`
	// Recovery is the chain's live recovery setup (recovery.go), if any.
	Recovery *recoveryFacts `json:"recovery,omitempty"`
	// guardiansAdded counts the guardian events, and recoverySet tells
	// whether a recovery entry was among the entries, of the blocks being
	// applied: the index writes only what they changed (guardian.go,
	// succession.go).
	guardiansAdded int
	recoverySet    bool
}

func (a *accountState) head() cid.Cid {
	c, err := cid.Decode(a.Head)
	if err != nil {
		return cid.Undef
	}
	return c
}

type localAccount struct {
	Created int64 `json:"created"`
	// Recipients are the recipients of the identities the key file
	// holds, when known (an account a device joined: rotate.go).
	Recipients []string `json:"recipients,omitempty"`
}

// forkEvidence holds two different signed blocks by one author with one
// sequence number: proof that the author showed two histories.
type forkEvidence struct {
	Account protocol.AccountID `json:"account"`
	Seq     uint64             `json:"seq"`
	A       string             `json:"a"`
	B       string             `json:"b"`
	Found   int64              `json:"found"`
	// Recovery and Superseded are set for a fork a recovery settled
	// (forkChoice): the recovery succession that won, and the head of the
	// branch it superseded, kept as evidence.
	Recovery   string `json:"recovery,omitempty"`
	Superseded string `json:"superseded,omitempty"`
	Rule       Rule   `json:"rule,omitempty"`
}

// getJSON reads a JSON value; found is false when the key is absent.
func getJSON(ctx context.Context, ds getter, k datastore.Key, v any) (found bool, err error) {
	b, err := ds.Get(ctx, k)
	if errors.Is(err, datastore.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", k, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode %s: %w", k, err)
	}
	return true, nil
}

func putJSON(ctx context.Context, w datastore.Write, k datastore.Key, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.Put(ctx, k, b)
}

// getter reads one key: a datastore, or a staged batch (which reads its
// own writes over the datastore's).
type getter interface {
	Get(ctx context.Context, k datastore.Key) ([]byte, error)
}

// queryAll returns the entries under prefix, with their values unless
// keysOnly.
func queryAll(ctx context.Context, ds datastore.Read, prefix string, keysOnly bool) ([]query.Entry, error) {
	res, err := ds.Query(ctx, query.Query{Prefix: prefix, KeysOnly: keysOnly})
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", prefix, err)
	}
	entries, err := res.Rest()
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", prefix, err)
	}
	return entries, nil
}

// listKeys returns the keys under prefix.
func listKeys(ctx context.Context, ds datastore.Read, prefix string) ([]datastore.Key, error) {
	entries, err := queryAll(ctx, ds, prefix, true)
	if err != nil {
		return nil, err
	}
	out := make([]datastore.Key, len(entries))
	for i, e := range entries {
		out[i] = datastore.NewKey(e.Key)
	}
	return out, nil
}

// namesUnder returns what follows prefix in each key under it (the last
// part of an index key: an account ID, a CID).
func namesUnder(ctx context.Context, ds datastore.Read, prefix string) ([]string, error) {
	keys, err := listKeys(ctx, ds, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.TrimPrefix(k.String(), prefix)
	}
	return out, nil
}

// accountsUnder returns the account IDs that end the keys under prefix
// (an index such as /keyshare/idx/guardof/GUARDIAN/WARD lists the wards
// under its guardian's prefix).
func (r *Repo) accountsUnder(ctx context.Context, prefix string) ([]protocol.AccountID, error) {
	names, err := namesUnder(ctx, r.ds, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.AccountID, len(names))
	for i, n := range names {
		out[i] = protocol.AccountID(n)
	}
	return out, nil
}

// cidsUnder returns the CIDs that end the keys under prefix; a key whose
// end is not one is reported as a damaged index entry.
func (r *Repo) cidsUnder(ctx context.Context, prefix string) ([]cid.Cid, error) {
	names, err := namesUnder(ctx, r.ds, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]cid.Cid, len(names))
	for i, n := range names {
		c, err := cid.Decode(n)
		if err != nil {
			return nil, fmt.Errorf("index key %s%s: %w", prefix, n, err)
		}
		out[i] = c
	}
	return out, nil
}
