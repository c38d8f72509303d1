package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// Guardians: a ward appoints and removes guardians; a guardian acts for
// a ward from its own account (keyshare/guardian.go); a parent creates a
// minor's account with itself as guardian.

// GuardianRow is one appointment, with the names of both parties.
type GuardianRow struct {
	keyshare.Guardianship
	WardName     string `json:"ward_name"`
	GuardianName string `json:"guardian_name"`
}

// GuardianList is the result of Guardians: both sides of the link.
type GuardianList struct {
	// Guardians are the guardians the account appointed ("my
	// guardians"), newest first, removed and expired ones included.
	Guardians []GuardianRow `json:"guardians"`
	// Wards are the accounts that appointed it ("I am guardian of").
	Wards []GuardianRow `json:"wards"`
}

// Guardians lists account id's guardians and wards.
func Guardians(ctx context.Context, repo *keyshare.Repo, id protocol.AccountID) (GuardianList, error) {
	mine, wards, err := repo.Guardians(ctx, id)
	if err != nil {
		return GuardianList{}, fmt.Errorf("list guardians: %w", err)
	}
	name := func(a protocol.AccountID) string {
		if info, err := repo.Account(ctx, a); err == nil {
			return info.Name
		}
		return ""
	}
	rows := func(gs []keyshare.Guardianship) []GuardianRow {
		out := make([]GuardianRow, 0, len(gs))
		for _, g := range gs {
			out = append(out, GuardianRow{Guardianship: g, WardName: name(g.Ward), GuardianName: name(g.Guardian)})
		}
		return out
	}
	return GuardianList{Guardians: rows(mine), Wards: rows(wards)}, nil
}

// AppointRequest appoints a guardian.
type AppointRequest struct {
	// Guardian is the account appointed (ID, name or ID suffix of a
	// contact).
	Guardian string `json:"guardian"`
	// May lists the rights: read, grant, revoke, approve (none: all).
	May []string `json:"may,omitempty"`
	// Until, when set, ends the appointment (RFC 3339).
	Until time.Time `json:"until,omitzero"`
}

// Appointed is the result of AppointGuardian and CreateMinor.
type Appointed struct {
	// Block is the ward's chain block holding the appointment.
	Block        string                   `json:"block"`
	Ward         protocol.AccountID       `json:"ward"`
	WardName     string                   `json:"ward_name"`
	Guardian     protocol.AccountID       `json:"guardian"`
	GuardianName string                   `json:"guardian_name"`
	May          []protocol.GuardianRight `json:"may"`
	Until        time.Time                `json:"until,omitzero"`
}

// parseRights turns a request's rights into canonical order (none: all).
func parseRights(may []string) ([]protocol.GuardianRight, error) {
	if len(may) == 0 {
		return protocol.GuardianRights, nil
	}
	rs, err := protocol.ParseRights(strings.Join(may, ","))
	if err != nil {
		return nil, invalidf("may: %v", err)
	}
	return rs, nil
}

// AppointGuardian makes req.Guardian k's guardian
// (keyshare.Repo.AppointGuardian).
func AppointGuardian(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req AppointRequest) (Appointed, error) {
	g, err := resolveOther(ctx, repo, "guardian", req.Guardian)
	if err != nil {
		return Appointed{}, err
	}
	if g.ID == k.ID {
		return Appointed{}, invalidf("guardian: an account cannot be its own guardian")
	}
	may, err := parseRights(req.May)
	if err != nil {
		return Appointed{}, err
	}
	if !req.Until.IsZero() && !req.Until.After(time.Now()) {
		return Appointed{}, invalidf("until: %s is not in the future", req.Until.Format(time.RFC3339))
	}
	block, err := repo.AppointGuardian(ctx, k, g.ID, may, req.Until)
	if err != nil {
		return Appointed{}, fmt.Errorf("appoint guardian: %w", err)
	}
	ward, _ := repo.Account(ctx, k.ID)
	return Appointed{Block: block.String(), Ward: k.ID, WardName: ward.Name, Guardian: g.ID, GuardianName: g.Name, May: may, Until: req.Until}, nil
}

// Removed is the result of RemoveGuardian.
type Removed struct {
	Block        string             `json:"block"`
	Guardian     protocol.AccountID `json:"guardian"`
	GuardianName string             `json:"guardian_name"`
}

// RemoveGuardian removes k's guardian (keyshare.Repo.RemoveGuardian):
// none of its acts after the guardian's chain as this node holds it
// counts, on any node.
func RemoveGuardian(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, guardian string) (Removed, error) {
	g, err := resolveOther(ctx, repo, "guardian", guardian)
	if err != nil {
		return Removed{}, err
	}
	block, err := repo.RemoveGuardian(ctx, k, g.ID)
	if errors.Is(err, keyshare.ErrNotGuardian) {
		return Removed{}, fmt.Errorf("%s is not a guardian of this account (see 'blockmrs guardian ls'): %w", g.ID.Short(), ErrNotFound)
	}
	if err != nil {
		return Removed{}, fmt.Errorf("remove guardian: %w", err)
	}
	return Removed{Block: block.String(), Guardian: g.ID, GuardianName: g.Name}, nil
}

// WardGrantRequest grants a ward's records, as its guardian.
type WardGrantRequest struct {
	// Ward is the account acted for (ID, name or ID suffix).
	Ward string `json:"ward"`
	// Records are the ward's records to share.
	Records []string `json:"records"`
	// To is the grantee.
	To string `json:"to"`
	// Expires, when set, ends the grant (RFC 3339).
	Expires time.Time `json:"expires,omitzero"`
}

// WardRevokeRequest revokes a ward's records from an account, as its
// guardian.
type WardRevokeRequest struct {
	Ward    string   `json:"ward"`
	Records []string `json:"records"`
	From    string   `json:"from"`
}

// WardActed is the result of GrantForWard and RevokeForWard.
type WardActed struct {
	// Block is the guardian's chain block holding the act.
	Block string `json:"block"`
	// Ward is the account acted for; Account the grantee or the revoked
	// account.
	Ward        protocol.AccountID `json:"ward"`
	WardName    string             `json:"ward_name"`
	Account     protocol.AccountID `json:"account"`
	AccountName string             `json:"account_name"`
	Records     []string           `json:"records"`
	Expires     time.Time          `json:"expires,omitzero"`
}

// guardianError maps a refused act to ErrForbidden.
func guardianError(verb string, err error) error {
	if errors.Is(err, keyshare.ErrNotGuardian) {
		return fmt.Errorf("%s: %w: %w", verb, ErrForbidden, err)
	}
	return fmt.Errorf("%s: %w", verb, err)
}

// GrantForWard grants req.Records of req.Ward to req.To as k, the ward's
// guardian (keyshare.Repo.GrantForWard).
func GrantForWard(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req WardGrantRequest) (WardActed, error) {
	ward, err := resolveOther(ctx, repo, "ward", req.Ward)
	if err != nil {
		return WardActed{}, err
	}
	to, err := resolveOther(ctx, repo, "to", req.To)
	if err != nil {
		return WardActed{}, err
	}
	cids, err := wardRecordsOf(req.Records)
	if err != nil {
		return WardActed{}, err
	}
	if !req.Expires.IsZero() && !req.Expires.After(time.Now()) {
		return WardActed{}, invalidf("expires: %s is not in the future", req.Expires.Format(time.RFC3339))
	}
	block, err := repo.GrantForWard(ctx, k, ward.ID, cids, to.ID, req.Expires)
	if err != nil {
		return WardActed{}, guardianError("grant for "+ward.ID.Short(), err)
	}
	auditChange(ctx, repo, keyshare.AuditGrant, ward.ID, to.ID, cids, "granted by guardian "+string(k.ID)+" in chain block "+block.String())
	return WardActed{Block: block.String(), Ward: ward.ID, WardName: ward.Name, Account: to.ID, AccountName: to.Name, Records: req.Records, Expires: req.Expires}, nil
}

// RevokeForWard revokes req.Records of req.Ward from req.From as k, the
// ward's guardian (keyshare.Repo.RevokeForWard).
func RevokeForWard(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, req WardRevokeRequest) (WardActed, error) {
	ward, err := resolveOther(ctx, repo, "ward", req.Ward)
	if err != nil {
		return WardActed{}, err
	}
	from, err := resolveOther(ctx, repo, "from", req.From)
	if err != nil {
		return WardActed{}, err
	}
	cids, err := wardRecordsOf(req.Records)
	if err != nil {
		return WardActed{}, err
	}
	block, err := repo.RevokeForWard(ctx, k, ward.ID, cids, from.ID)
	if err != nil {
		return WardActed{}, guardianError("revoke for "+ward.ID.Short(), err)
	}
	auditChange(ctx, repo, keyshare.AuditRevoke, ward.ID, from.ID, cids, "revoked by guardian "+string(k.ID)+" in chain block "+block.String())
	return WardActed{Block: block.String(), Ward: ward.ID, WardName: ward.Name, Account: from.ID, AccountName: from.Name, Records: req.Records}, nil
}

// wardRecordsOf decodes the CIDs of records a guardian acts on (the repo
// checks that the ward is their subject).
func wardRecordsOf(records []string) ([]cid.Cid, error) {
	if len(records) == 0 {
		return nil, invalidf("records: none given")
	}
	if len(records) > protocol.MaxKeysPerEntry {
		return nil, invalidf("records: at most %d", protocol.MaxKeysPerEntry)
	}
	out := make([]cid.Cid, 0, len(records))
	for _, s := range records {
		c, err := cid.Decode(s)
		if err != nil {
			return nil, invalidf("records: %q is not a CID", truncate(s))
		}
		out = append(out, c)
	}
	return out, nil
}

// MinorRequest creates a minor's account.
type MinorRequest struct {
	// Name is the minor's display name (as NewAccount.Name).
	Name string `json:"name"`
	// Passphrase encrypts the minor's keys at rest ("" stores them
	// unencrypted, for the guardian's node to hold).
	Passphrase string `json:"passphrase"`
	// May lists the guardian's rights (none: all); Until ends them
	// (RFC 3339), for instance at the minor's coming of age.
	May   []string  `json:"may,omitempty"`
	Until time.Time `json:"until,omitzero"`
}

// CreateMinor creates, in this repo, a patient account for a minor whose
// node is this one, and has it appoint k, the acting account, as its
// guardian (keyshare.Repo.AppointGuardian, signed with the minor's new
// keys). The minor's keys can be handed over later (the account moves to
// the grown-up's repo and rotates its keys).
func CreateMinor(ctx context.Context, repo *keyshare.Repo, k *keyshare.Keys, node keyshare.DeviceInfo, req MinorRequest) (Appointed, error) {
	if err := CheckName(req.Name); err != nil {
		return Appointed{}, err
	}
	may, err := parseRights(req.May)
	if err != nil {
		return Appointed{}, err
	}
	if !req.Until.IsZero() && !req.Until.After(time.Now()) {
		return Appointed{}, invalidf("until: %s is not in the future", req.Until.Format(time.RFC3339))
	}
	if len(req.Passphrase) > MaxPassphrase {
		return Appointed{}, invalidf("passphrase: longer than %d bytes", MaxPassphrase)
	}
	if node.PeerID == "" {
		return Appointed{}, fmt.Errorf("create minor: %w", ErrNoNode)
	}
	if err := CheckNameFree(ctx, repo, req.Name); err != nil {
		return Appointed{}, err
	}
	var pass []byte
	if req.Passphrase != "" {
		pass = []byte(req.Passphrase)
		defer clear(pass)
	}
	minor, err := repo.CreateAccount(ctx, req.Name, protocol.RolePatient, pass, node)
	if err != nil {
		return Appointed{}, fmt.Errorf("create minor: %w", err)
	}
	block, err := repo.AppointGuardian(ctx, minor, k.ID, may, req.Until)
	if err != nil {
		return Appointed{}, fmt.Errorf("create minor: account %s made, but appointing the guardian failed (run 'blockmrs guardian add' as %s): %w", minor.ID.Short(), req.Name, err)
	}
	// Accepted by construction: the guardian asked for the appointment.
	if _, _, err := repo.AcceptWard(ctx, k, minor.ID); err != nil {
		return Appointed{}, fmt.Errorf("create minor: account %s made and guardian appointed, but accepting it failed (run 'blockmrs guardian accept %s'): %w", minor.ID.Short(), req.Name, err)
	}
	g, _ := repo.Account(ctx, k.ID)
	return Appointed{Block: block.String(), Ward: minor.ID, WardName: req.Name, Guardian: k.ID, GuardianName: g.Name, May: may, Until: req.Until}, nil
}
