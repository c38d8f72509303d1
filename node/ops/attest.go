package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Attestations, trusted authorities, verified roles and the clinic
// directory (keyshare's attest.go, trust.go, directory.go; the rules are
// the policy's verifyRole and mayAttest).

// AttestRequest attests an account's role, on the acting account's chain.
type AttestRequest struct {
	// Account is the attested account (ID, name or ID suffix); the repo
	// must know it and it must declare Role.
	Account string `json:"account"`
	// Role is clinician (attested by a clinic), clinic or authority
	// (attested by an authority).
	Role protocol.Role `json:"role"`
	// Department, for a clinician, is where it works (at most 200 bytes).
	Department string `json:"department,omitempty"`
	// Emergency lets the clinician use emergency access.
	Emergency bool `json:"emergency,omitempty"`
	// Until, when set, ends the attestation then (RFC 3339).
	Until time.Time `json:"until,omitzero"`
}

// Attested is the result of Attest and Unattest.
type Attested struct {
	// Block is the chain block holding the attest or unattest entry.
	Block string `json:"block"`
	// Account and Name name the attested account.
	Account protocol.AccountID `json:"account"`
	Name    string             `json:"name"`
	// Role, Department, Emergency and Until are the attestation's terms
	// (empty for a withdrawal).
	Role       protocol.Role `json:"role,omitempty"`
	Department string        `json:"department,omitempty"`
	Emergency  bool          `json:"emergency,omitempty"`
	Until      time.Time     `json:"until,omitzero"`
}

// Attest writes on k's chain that req.Account holds req.Role
// (keyshare.Repo.Attest). An authority attests clinics (and subordinate
// authorities), a clinic its clinicians; anything else is refused.
func Attest(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req AttestRequest) (Attested, error) {
	if err := protocol.CheckAttestedRole(req.Role); err != nil {
		return Attested{}, invalidf("role: %v", err)
	}
	if err := protocol.CheckDepartment(req.Department); err != nil {
		return Attested{}, invalidf("department: %v", err)
	}
	if req.Emergency && req.Role != protocol.RoleClinician {
		return Attested{}, invalidf("emergency: only a clinician's attestation may allow emergency access")
	}
	if !req.Until.IsZero() && !req.Until.After(time.Now()) {
		return Attested{}, invalidf("until: %s is not in the future", req.Until.Format(time.RFC3339))
	}
	to, err := resolveOther(ctx, repo, "account", req.Account)
	if err != nil {
		return Attested{}, err
	}
	block, err := repo.Attest(ctx, k, to.ID, keyshare.AttestOptions{Role: req.Role, Department: req.Department, Emergency: req.Emergency, Until: req.Until})
	if err != nil {
		return Attested{}, &invalidCause{what: "attest", err: err}
	}
	return Attested{Block: block.String(), Account: to.ID, Name: to.Name, Role: req.Role, Department: req.Department, Emergency: req.Emergency, Until: req.Until.UTC()}, nil
}

// UnattestRequest withdraws an attestation.
type UnattestRequest struct {
	// Account is the account whose attestation is withdrawn.
	Account string `json:"account"`
}

// Unattest withdraws k's attestation of req.Account: from the commit
// that brings the entry, on every node, it counts for nothing.
func Unattest(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req UnattestRequest) (Attested, error) {
	from, err := resolveOther(ctx, repo, "account", req.Account)
	if err != nil {
		return Attested{}, err
	}
	block, err := repo.Unattest(ctx, k, from.ID)
	if errors.Is(err, keyshare.ErrNoAttestation) {
		return Attested{}, fmt.Errorf("%s has no live attestation by this account (see 'blockmrs attest ls'): %w", from.ID.Short(), ErrNotFound)
	}
	if err != nil {
		return Attested{}, err
	}
	return Attested{Block: block.String(), Account: from.ID, Name: from.Name}, nil
}

// AttestationList is the result of ListAttestations.
type AttestationList struct {
	// Account is the account listed.
	Account protocol.AccountID `json:"account"`
	// Given are the attestations its chain holds (withdrawn ones with
	// Live false), Received those other chains hold of it.
	Given    []keyshare.Attestation `json:"given"`
	Received []keyshare.Attestation `json:"received"`
	// Role is the verdict on the role it declares.
	Role keyshare.RoleProof `json:"role"`
}

// ListAttestations lists what account id attested and what attests it.
func ListAttestations(ctx context.Context, repo *keyshare.Repo, id protocol.AccountID) (AttestationList, error) {
	given, received, err := repo.Attestations(ctx, id)
	if err != nil {
		return AttestationList{}, err
	}
	role, err := repo.RoleOf(ctx, id)
	if err != nil {
		return AttestationList{}, err
	}
	if given == nil {
		given = []keyshare.Attestation{}
	}
	if received == nil {
		received = []keyshare.Attestation{}
	}
	return AttestationList{Account: id, Given: given, Received: received, Role: role}, nil
}

// Prover fetches an account's role proof from a node; *attest.Service
// implements it.
type Prover interface {
	Prove(ctx context.Context, node peer.AddrInfo, id protocol.AccountID) (keyshare.ProofApplied, error)
}

// RoleCheckRequest asks for the verdict on an account's role.
type RoleCheckRequest struct {
	// Account is the account (an ID, or a name or ID suffix of one the
	// repo knows).
	Account string `json:"account"`
	// Role is the role in question; empty means the role it declares.
	Role protocol.Role `json:"role,omitempty"`
	// From, when set, is the address of a node that knows the account
	// (a multiaddr ending in /p2p/PEER_ID): its role proof is fetched
	// and applied first (needs the running node).
	From string `json:"from,omitempty"`
}

// RoleChecked is the result of CheckRole.
type RoleChecked struct {
	// Proof is the verdict.
	Proof keyshare.RoleProof `json:"proof"`
	// Name is the account's profile name, when the repo holds it.
	Name string `json:"name,omitempty"`
	// Fetched is what the proof from req.From changed, when asked.
	Fetched *keyshare.ProofApplied `json:"fetched,omitempty"`
}

// CheckRole judges req.Account's role with this repo's trust list,
// after fetching its role proof from req.From when given.
func CheckRole(ctx context.Context, repo *keyshare.Repo, prover Prover, req RoleCheckRequest) (RoleChecked, error) {
	var out RoleChecked
	id := protocol.AccountID(req.Account)
	if req.From != "" {
		if prover == nil {
			return RoleChecked{}, ErrNoNode
		}
		if _, err := protocol.ParseAccountID(req.Account); err != nil {
			return RoleChecked{}, invalidf("account: with from, give the account's full ID: %v", err)
		}
		addr, err := parsePeerAddr("from", req.From)
		if err != nil {
			return RoleChecked{}, err
		}
		p, err := prover.Prove(ctx, addr, id)
		if err != nil {
			return RoleChecked{}, fmt.Errorf("role proof from %s: %w", addr.ID, err)
		}
		out.Fetched = &p
	} else {
		info, err := resolveOther(ctx, repo, "account", req.Account)
		if err != nil {
			return RoleChecked{}, err
		}
		id = info.ID
	}
	role := req.Role
	if info, err := repo.Account(ctx, id); err == nil {
		out.Name = info.Name
		if role == "" {
			role = info.Role
		}
	}
	if role == "" {
		role = protocol.RoleClinician
	}
	proof, err := repo.VerifiedRole(ctx, id, role, time.Now())
	if err != nil {
		return RoleChecked{}, err
	}
	out.Proof = proof
	return out, nil
}

func parsePeerAddr(field, s string) (peer.AddrInfo, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, invalidf("%s: %q is not a multiaddr: %v", field, truncate(s), err)
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return peer.AddrInfo{}, invalidf("%s: address %q must end in /p2p/PEER_ID: %v", field, truncate(s), err)
	}
	return *info, nil
}

// TrustRequest names an authority to trust or stop trusting.
type TrustRequest struct {
	// Account is the authority (ID, name or ID suffix of a known account).
	Account string `json:"account"`
}

// TrustList is the result of Trust, Distrust and ListTrust: the whole
// trust list, removed shipped or configured entries included.
type TrustList struct {
	Trusted []keyshare.Trusted `json:"trusted"`
}

// Trust adds req.Account to the trusted authorities.
func Trust(ctx context.Context, repo *keyshare.Repo, req TrustRequest) (TrustList, error) {
	info, err := resolveOther(ctx, repo, "account", req.Account)
	if err != nil {
		return TrustList{}, err
	}
	if err := repo.Trust(ctx, info.ID); err != nil {
		return TrustList{}, &invalidCause{what: "trust", err: err}
	}
	return ListTrust(ctx, repo)
}

// Distrust removes req.Account from the trusted authorities, whatever
// brought it there (shipped, config or user).
func Distrust(ctx context.Context, repo *keyshare.Repo, req TrustRequest) (TrustList, error) {
	id := protocol.AccountID(req.Account)
	if _, err := protocol.ParseAccountID(req.Account); err != nil {
		info, err := resolveOther(ctx, repo, "account", req.Account)
		if err != nil {
			return TrustList{}, err
		}
		id = info.ID
	}
	if err := repo.Distrust(ctx, id); errors.Is(err, keyshare.ErrNotTrusted) {
		return TrustList{}, fmt.Errorf("%s is not a trusted authority (see 'blockmrs trust ls'): %w", id.Short(), ErrNotFound)
	} else if err != nil {
		return TrustList{}, err
	}
	return ListTrust(ctx, repo)
}

// ListTrust lists the trust list.
func ListTrust(ctx context.Context, repo *keyshare.Repo) (TrustList, error) {
	list, err := repo.TrustList(ctx)
	if err != nil {
		return TrustList{}, err
	}
	return TrustList{Trusted: list}, nil
}

// Directories asks a clinic's node for its directory; *attest.Service
// implements it.
type Directories interface {
	Directory(ctx context.Context, node peer.AddrInfo, clinic protocol.AccountID, query string, limit int) ([]keyshare.DirectoryResult, []string, error)
}

// DirectoryRequest is a directory search.
type DirectoryRequest struct {
	// Clinic names the clinic's node: its address (a multiaddr ending in
	// /p2p/PEER_ID, as 'blockmrs id' prints it there, which asks every
	// clinic on that node), or the account ID of a clinic this repo
	// knows (asking the nodes its chain declares, which must be
	// reachable: connected, or found by the private DHT).
	Clinic string `json:"clinic"`
	// Query is matched, case folded, against names and departments;
	// empty lists every clinician (at most Limit).
	Query string `json:"query,omitempty"`
	// Limit bounds the results (1 to 50; 0 means 50).
	Limit int `json:"limit,omitempty"`
}

// DirectoryResults is the result of Directory.
type DirectoryResults struct {
	// Results are the clinicians found, as this node judges them: names
	// from their chains, roles verified with this repo's trust list.
	Results []keyshare.DirectoryResult `json:"results"`
	// Problems lists blocks of the answer that were not taken.
	Problems []string `json:"problems,omitempty"`
}

// Directory searches a clinic's directory over the network.
func Directory(ctx context.Context, repo *keyshare.Repo, dirs Directories, req DirectoryRequest) (DirectoryResults, error) {
	if len(req.Query) > protocol.MaxDirectoryQuery {
		return DirectoryResults{}, invalidf("query: longer than %d bytes", protocol.MaxDirectoryQuery)
	}
	if err := (&protocol.DirectoryRequest{Query: req.Query}).Validate(); err != nil {
		return DirectoryResults{}, invalidf("query: %v", err)
	}
	if req.Limit < 0 || req.Limit > protocol.MaxDirectoryResults {
		return DirectoryResults{}, invalidf("limit: must be 1 to %d", protocol.MaxDirectoryResults)
	}
	clinic := strings.TrimSpace(req.Clinic)
	if clinic == "" {
		return DirectoryResults{}, invalidf("clinic: empty (give the clinic node's address or a clinic's account ID)")
	}
	if dirs == nil {
		return DirectoryResults{}, ErrNoNode
	}
	var targets []peer.AddrInfo
	var clinicID protocol.AccountID
	if strings.HasPrefix(clinic, "/") {
		addr, err := parsePeerAddr("clinic", clinic)
		if err != nil {
			return DirectoryResults{}, err
		}
		targets = []peer.AddrInfo{addr}
	} else {
		info, err := resolveOther(ctx, repo, "clinic", clinic)
		if err != nil {
			return DirectoryResults{}, err
		}
		if info.Role != protocol.RoleClinic {
			return DirectoryResults{}, invalidf("clinic: %s declares the role %s, not clinic", info.ID.Short(), info.Role)
		}
		clinicID = info.ID
		for _, d := range info.Devices {
			if p, err := peer.Decode(d.PeerID); err == nil && !d.Replica {
				targets = append(targets, peer.AddrInfo{ID: p})
			}
		}
		if len(targets) == 0 {
			return DirectoryResults{}, invalidf("clinic: %s declares no node; give its node's address instead", info.ID.Short())
		}
	}
	var errs []error
	for _, t := range targets {
		res, problems, err := dirs.Directory(ctx, t, clinicID, req.Query, req.Limit)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if res == nil {
			res = []keyshare.DirectoryResult{}
		}
		return DirectoryResults{Results: res, Problems: problems}, nil
	}
	return DirectoryResults{}, fmt.Errorf("directory: no node of the clinic answered: %w", errors.Join(errs...))
}
