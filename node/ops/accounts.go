package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// AccountLister lists the accounts a repo knows; *keyshare.Repo
// implements it.
type AccountLister interface {
	Accounts(ctx context.Context) ([]keyshare.AccountInfo, error)
}

// Account is one account as operations return it: keyshare.AccountInfo
// with the head CID as a plain string.
type Account struct {
	// ID is the account ID (peer-ID text form of its signing key).
	ID protocol.AccountID `json:"id"`
	// Name and Role come from the account's profile.
	Name string        `json:"name"`
	Role protocol.Role `json:"role"`
	// Recipient is the account's age X25519 recipient.
	Recipient string `json:"recipient"`
	// Local is true for the repo's own accounts (it holds their keys).
	Local bool `json:"local"`
	// Default marks the repo's default local account.
	Default bool `json:"default,omitempty"`
	// Encrypted tells whether a local account's keys need a passphrase.
	Encrypted bool `json:"encrypted,omitempty"`
	// Head is the CID of the newest chain block held, "" if none.
	Head string `json:"head"`
	// Seq is that block's sequence number.
	Seq uint64 `json:"seq"`
	// Stopped, when set, says why entries past some block are not applied.
	Stopped string `json:"stopped,omitempty"`
	// Devices are the nodes the account declares as acting for it.
	Devices []keyshare.DeviceInfo `json:"devices,omitempty"`
	// RoleProof, in lists of a repo that judges roles, is the verdict on
	// a declared clinician, clinic or authority role: verified by
	// attestations from a trusted authority, or only declared.
	RoleProof *keyshare.RoleProof `json:"role_proof,omitempty"`
}

// roleJudge judges declared roles; *keyshare.Repo implements it.
type roleJudge interface {
	RoleOf(ctx context.Context, id protocol.AccountID) (keyshare.RoleProof, error)
}

// AccountOf converts a keyshare.AccountInfo.
func AccountOf(a keyshare.AccountInfo) Account {
	out := Account{ID: a.ID, Name: a.Name, Role: a.Role, Recipient: a.Recipient, Local: a.Local,
		Default: a.Default, Encrypted: a.Encrypted, Seq: a.Seq, Stopped: a.Stopped, Devices: a.Devices}
	if a.Head.Defined() {
		out.Head = a.Head.String()
	}
	return out
}

// AccountList is the result of Accounts and Contacts.
type AccountList struct {
	// Accounts lists the accounts, in the repo's order: the default local
	// account first, then by name.
	Accounts []Account `json:"accounts"`
}

// Accounts lists the repo's own accounts (those it holds keys for).
func Accounts(ctx context.Context, repo AccountLister) (AccountList, error) {
	return listWhere(ctx, repo, true)
}

// Contacts lists the accounts the repo knows but holds no keys for.
func Contacts(ctx context.Context, repo AccountLister) (AccountList, error) {
	return listWhere(ctx, repo, false)
}

func listWhere(ctx context.Context, repo AccountLister, local bool) (AccountList, error) {
	all, err := repo.Accounts(ctx)
	if err != nil {
		return AccountList{}, fmt.Errorf("list accounts: %w", err)
	}
	judge, _ := repo.(roleJudge)
	out := AccountList{Accounts: []Account{}}
	for _, a := range all {
		if a.Local != local {
			continue
		}
		acc := AccountOf(a)
		if judge != nil && attestable(a.Role) {
			p, err := judge.RoleOf(ctx, a.ID)
			if err != nil {
				return AccountList{}, fmt.Errorf("judge the role of %s: %w", a.ID, err)
			}
			acc.RoleProof = &p
		}
		out.Accounts = append(out.Accounts, acc)
	}
	return out, nil
}

// MaxPassphrase bounds a new account's passphrase, in bytes.
const MaxPassphrase = 1024

// NewAccount is the argument of CreateAccount.
type NewAccount struct {
	// Name is the account's display name: 1 to protocol.MaxNameLen bytes
	// of UTF-8, no control characters, no leading, trailing or repeated
	// spaces, and unlike every other local account's name (ignoring case).
	Name string `json:"name"`
	// Role is patient, clinician, clinic, authority or app.
	Role protocol.Role `json:"role"`
	// Passphrase encrypts the account's keys at rest; "" stores them
	// unencrypted. Never stored or returned.
	Passphrase string `json:"passphrase"`
}

// CreateAccount makes a new local account in repo: fresh keys, encrypted
// with the passphrase, and the first block of its chain, which declares
// node as a device acting for it (so that contacts' requests reach it and
// its own node may fetch its blocks). The first account becomes the
// default. It returns the account as the repo now lists it.
func CreateAccount(ctx context.Context, repo *keyshare.Repo, node keyshare.DeviceInfo, req NewAccount) (Account, error) {
	if err := CheckName(req.Name); err != nil {
		return Account{}, err
	}
	role, err := protocol.ParseRole(string(req.Role))
	if err != nil {
		return Account{}, invalidf("role: %v", err)
	}
	if len(req.Passphrase) > MaxPassphrase {
		return Account{}, invalidf("passphrase: longer than %d bytes", MaxPassphrase)
	}
	if node.PeerID == "" {
		return Account{}, fmt.Errorf("create account: %w", ErrNoNode)
	}
	if err := CheckNameFree(ctx, repo, req.Name); err != nil {
		return Account{}, err
	}
	var pass []byte
	if req.Passphrase != "" {
		pass = []byte(req.Passphrase)
		defer clear(pass)
	}
	keys, err := repo.CreateAccount(ctx, req.Name, role, pass, node)
	if err != nil {
		return Account{}, fmt.Errorf("create account: %w", err)
	}
	info, err := repo.Account(ctx, keys.ID)
	if err != nil {
		return Account{}, fmt.Errorf("create account: %w", err)
	}
	return AccountOf(info), nil
}

// CheckNameFree returns an error matching ErrExists when a local account
// of repo is named name, ignoring case.
func CheckNameFree(ctx context.Context, repo AccountLister, name string) error {
	local, err := Accounts(ctx, repo)
	if err != nil {
		return err
	}
	for _, a := range local.Accounts {
		if strings.EqualFold(a.Name, name) {
			return fmt.Errorf("this repo already has an account named %q (%s): %w", a.Name, a.ID, ErrExists)
		}
	}
	return nil
}

// CheckName checks a new account's display name (see NewAccount.Name).
func CheckName(name string) error {
	switch {
	case name == "":
		return invalidf("name: empty")
	case len(name) > protocol.MaxNameLen:
		return invalidf("name: longer than %d bytes", protocol.MaxNameLen)
	case !utf8.ValidString(name):
		return invalidf("name: not UTF-8")
	case strings.ContainsFunc(name, unicode.IsControl):
		return invalidf("name: holds control characters")
	case strings.Join(strings.Fields(name), " ") != name:
		return invalidf("name: leading, trailing or repeated spaces")
	}
	return nil
}

// ThisDevice is the node with peer ID id as a new account declares it:
// named after the machine's host name when that is a plain short name.
func ThisDevice(id string) keyshare.DeviceInfo {
	name, err := os.Hostname()
	if err != nil || CheckName(name) != nil || len(name) > 64 {
		name = "this node"
	}
	return keyshare.DeviceInfo{PeerID: id, Name: name}
}

// DefaultRequest is the argument of SetDefault.
type DefaultRequest struct {
	// Account is the local account (ID, name or ID suffix) to make the
	// default: the one commands and endpoints act as when no account is
	// given.
	Account string `json:"account"`
}

// SetDefault makes a local account the repo's default and returns the
// local accounts as Accounts lists them afterwards. A contact (an account
// whose keys the repo does not hold) is ErrInvalid, an unknown account
// ErrNotFound.
func SetDefault(ctx context.Context, repo *keyshare.Repo, req DefaultRequest) (AccountList, error) {
	if req.Account == "" {
		return AccountList{}, invalidf("account: empty")
	}
	info, err := repo.Resolve(ctx, req.Account, true)
	if errors.Is(err, keyshare.ErrUnknownAccount) {
		return AccountList{}, fmt.Errorf("account: this repo has no account named %q: %w", truncate(req.Account), ErrNotFound)
	}
	if err != nil {
		return AccountList{}, invalidf("account: %v", err)
	}
	if err := repo.SetDefault(ctx, info.ID); err != nil {
		return AccountList{}, fmt.Errorf("set default account: %w", err)
	}
	return Accounts(ctx, repo)
}
