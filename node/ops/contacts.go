package ops

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// MaxShareCode bounds a share code, in bytes.
const MaxShareCode = 2048

// ShareCode names an account and a node that hosts it: what 'blockmrs id
// --share' prints and Identity.ShareCode holds, "ADDRESS ACCOUNT_ID",
// ADDRESS being a multiaddr ending in /p2p/PEER_ID.
type ShareCode struct {
	// Node is the hosting node's peer ID and address.
	Node peer.AddrInfo
	// Account is the account hosted there.
	Account protocol.AccountID
}

// ParseShareCode parses "ADDRESS ACCOUNT_ID" (any white space between,
// around ignored).
func ParseShareCode(s string) (ShareCode, error) {
	if len(s) > MaxShareCode {
		return ShareCode{}, invalidf("share code: longer than %d bytes", MaxShareCode)
	}
	f := strings.Fields(s)
	if len(f) != 2 {
		return ShareCode{}, invalidf("share code: want \"ADDRESS ACCOUNT_ID\" (as 'blockmrs id --share' prints it), got %d words", len(f))
	}
	return ParseShareParts(f[0], f[1])
}

// ParseShareParts parses a share code given as its two parts.
func ParseShareParts(addr, account string) (ShareCode, error) {
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return ShareCode{}, invalidf("share code: address %q: %v", truncate(addr), err)
	}
	info, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return ShareCode{}, invalidf("share code: address %q must end in /p2p/PEER_ID: %v", truncate(addr), err)
	}
	if _, err := protocol.ParseAccountID(account); err != nil {
		return ShareCode{}, invalidf("share code: account: %v", err)
	}
	return ShareCode{Node: *info, Account: protocol.AccountID(account)}, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// Profiles fetches an account's profile from a node that hosts it and
// imports it; *chainsync.Service implements it.
type Profiles interface {
	Profile(ctx context.Context, node peer.AddrInfo, account protocol.AccountID) (*keyshare.ImportResult, error)
}

// AddContactArgs is the argument of AddContact.
type AddContactArgs struct {
	// ShareCode is "ADDRESS ACCOUNT_ID", as 'blockmrs id --share' prints
	// it (see ParseShareCode).
	ShareCode string `json:"share_code"`
}

// ContactAdded is the result of AddContact: what the import changed.
type ContactAdded struct {
	// Added lists the accounts the repo did not know before.
	Added []Account `json:"added"`
	// Updated lists known accounts whose chains advanced.
	Updated []Account `json:"updated"`
	// Unchanged lists the accounts whose chains brought nothing new.
	Unchanged []protocol.AccountID `json:"unchanged,omitempty"`
	// NewBlocks counts the chain blocks stored.
	NewBlocks int `json:"new_chain_blocks"`
	// Skipped counts the blocks of an imported file not reachable from
	// its roots, which were not stored; SkippedBytes is their size.
	// Absent when there were none (always, over the network).
	Skipped      int   `json:"skipped_blocks,omitempty"`
	SkippedBytes int64 `json:"skipped_bytes,omitempty"`
	// Superseded lists the forks a recovery settled (PROTOCOL.md §8);
	// absent when none.
	Superseded []keyshare.Superseded `json:"superseded,omitempty"`
}

// AddContact dials the node the share code names and asks it for the
// account's profile (a node gives it out only for accounts it hosts, to
// whoever names the account); every block is verified before it is
// stored (see chainsync.Service.Profile). profiles is the node's chain
// sync, nil when the node is not running.
func AddContact(ctx context.Context, repo AccountLister, profiles Profiles, args AddContactArgs) (ContactAdded, error) {
	code, err := ParseShareCode(args.ShareCode)
	if err != nil {
		return ContactAdded{}, err
	}
	if profiles == nil {
		return ContactAdded{}, fmt.Errorf("add a contact from the network: %w", ErrNoNode)
	}
	known, err := knownAccounts(ctx, repo)
	if err != nil {
		return ContactAdded{}, err
	}
	res, err := profiles.Profile(ctx, code.Node, code.Account)
	if err != nil {
		return ContactAdded{}, fmt.Errorf("add contact %s: %w", code.Account, err)
	}
	return contactAdded(known, res), nil
}

// knownAccounts returns the set of account IDs repo knows now.
func knownAccounts(ctx context.Context, repo AccountLister) (map[protocol.AccountID]bool, error) {
	before, err := repo.Accounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	known := make(map[protocol.AccountID]bool, len(before))
	for _, a := range before {
		known[a.ID] = true
	}
	return known, nil
}

// contactAdded sorts what an import brought into new and advanced
// accounts; known holds the accounts known before it.
func contactAdded(known map[protocol.AccountID]bool, res *keyshare.ImportResult) ContactAdded {
	out := ContactAdded{Added: []Account{}, Updated: []Account{}, Unchanged: res.Unchanged, NewBlocks: res.NewBlocks,
		Skipped: res.Skipped, SkippedBytes: res.SkippedBytes, Superseded: res.Superseded}
	for _, a := range res.Accounts {
		if known[a.ID] {
			out.Updated = append(out.Updated, AccountOf(a))
		} else {
			out.Added = append(out.Added, AccountOf(a))
		}
	}
	return out
}

// MaxContactFile bounds the profile file the API's contact upload (POST
// /api/v1/contacts/import) takes, in bytes: a profile is one small chain
// block, and a full export's chains are far below this; a larger export
// is for 'blockmrs import'.
const MaxContactFile = 16 << 20

// ImportContact imports a CAR file holding other accounts' chains (a
// profile from 'blockmrs id --export', or a full 'blockmrs export'), of
// at most maxSize block bytes (0: the store's default limit). Every block
// is verified before anything is stored: a bad signature, a broken link,
// a fork or a truncated file rejects the whole file (ErrInvalid) and
// leaves the repo as it was.
func ImportContact(ctx context.Context, repo *keyshare.Repo, car io.Reader, maxSize int64) (ContactAdded, error) {
	known, err := knownAccounts(ctx, repo)
	if err != nil {
		return ContactAdded{}, err
	}
	res, err := repo.ImportCARLimit(ctx, car, maxSize)
	if err != nil {
		if ctx.Err() != nil {
			return ContactAdded{}, fmt.Errorf("profile file: %w", ctx.Err())
		}
		// The file's fault (malformed, forged, forked, over the limit or
		// cut short); the cause stays matchable (store.ErrImportLimit).
		return ContactAdded{}, &invalidCause{what: "profile file", err: err, hint: "want a .car file from 'blockmrs id --export'"}
	}
	return contactAdded(known, res), nil
}
