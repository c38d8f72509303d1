package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	bmnode "github.com/blockmrs/blockmrs/node"
	"github.com/blockmrs/blockmrs/node/ops"
	"github.com/blockmrs/blockmrs/node/p2p"
	"github.com/blockmrs/blockmrs/protocol"
)

var initCmd = &command{name: "init", summary: "create the repo if needed and a new account in it", run: runInit}

func runInit(ctx context.Context, args []string) (err error) {
	f := newFlags("init", "[flags]", `
Init creates the repo folder if it does not exist yet and a new account in
it: a fresh Ed25519 signing key and age key, and the first block of the
account's signed chain (its profile: name, role, age recipient). The keys
are encrypted with a passphrase: $BLOCKMRS_PASSPHRASE when set (set but
empty means none), else asked twice on the terminal (empty means none).
A repo can hold several accounts; the first becomes the default. It prints
the new account's ID.`, `
blockmrs init --name "Alice Smith"
blockmrs init --name "Dr Jones" --role clinician --repo /srv/clinic`)
	name := f.String("name", "", "the account's display `NAME` (default: your user name)")
	roleFlag := f.String("role", "patient", "the account's `ROLE`: patient, clinician, clinic, authority or app")
	noPass := f.Bool("no-passphrase", false, "store the keys unencrypted, without asking for a passphrase")
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	role, err := protocol.ParseRole(*roleFlag)
	if err != nil {
		return usagef("--role: %v", err)
	}
	if *name == "" {
		*name = defaultName()
	}
	if err := ops.CheckName(*name); err != nil {
		return usagef("--%v", err)
	}
	if _, set := os.LookupEnv(envPassphrase); !*noPass && !set && !haveTTY(ctx) {
		return errNoPassphraseSource // before anything is created
	}
	dir, err := f.repoPath()
	if err != nil {
		return err
	}
	repo, err := bmnode.OpenRepo(ctx, dir, true)
	if errors.Is(err, keyshare.ErrRepoLocked) {
		return &repoLockedError{dir: dir, err: err} // execute says a daemon must be stopped first
	}
	if err != nil {
		return err
	}
	defer closeRepo(repo, &err)
	if err := ops.CheckNameFree(ctx, repo, *name); err != nil {
		return fmt.Errorf("%w: choose another --name", err)
	}
	pass, err := newPassphrase(ctx, *noPass)
	if err != nil {
		return err
	}
	defer clear(pass)
	node, err := thisNode(repo)
	if err != nil {
		return err
	}
	info, err := ops.CreateAccount(ctx, repo, node, ops.NewAccount{Name: *name, Role: role, Passphrase: string(pass)})
	if err != nil {
		return err
	}
	if f.json {
		return f.printJSON(struct {
			ID        protocol.AccountID `json:"id"`
			Name      string             `json:"name"`
			Role      protocol.Role      `json:"role"`
			Recipient string             `json:"recipient"`
			Repo      string             `json:"repo"`
			Encrypted bool               `json:"encrypted"`
			Default   bool               `json:"default"`
			Node      string             `json:"node"`
		}{info.ID, info.Name, info.Role, info.Recipient, repo.Dir(), info.Encrypted, info.Default, node.PeerID})
	}
	fmt.Fprintln(f.out(), info.ID)
	return nil
}

// thisNode creates the repo's node key if it has none yet and returns the
// node as the new account declares it in its first chain block: then the
// profile that contacts receive names the node, so requests reach it and
// the account's own daemon may fetch the account's blocks from peers.
func thisNode(repo *keyshare.Repo) (keyshare.DeviceInfo, error) {
	key, err := p2p.LoadOrCreateKey(repo.Dir())
	if err != nil {
		return keyshare.DeviceInfo{}, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return keyshare.DeviceInfo{}, fmt.Errorf("node key: %w", err)
	}
	return ops.ThisDevice(id.String()), nil
}

var errNoPassphraseSource = fmt.Errorf("no terminal to ask for a passphrase: set $%s (empty for none) or use --no-passphrase", envPassphrase)

// newPassphrase decides the new account's passphrase: none with
// --no-passphrase, $BLOCKMRS_PASSPHRASE when set, else asked twice on the
// terminal.
func newPassphrase(ctx context.Context, none bool) ([]byte, error) {
	if none {
		return nil, nil
	}
	if p, ok := os.LookupEnv(envPassphrase); ok {
		return []byte(p), nil
	}
	tty, err := openTTY()
	if err != nil {
		return nil, errNoPassphraseSource
	}
	defer tty.Close()
	p1, err := readPassword(ctx, tty, "Passphrase to encrypt the account's keys (empty for none): ")
	if err != nil {
		return nil, err
	}
	if len(p1) == 0 {
		fmt.Fprintln(tty, "Warning: no passphrase; the account's keys will be stored unencrypted.")
		return nil, nil
	}
	p2, err := readPassword(ctx, tty, "Repeat the passphrase: ")
	if err != nil {
		return nil, err
	}
	defer clear(p2)
	if string(p1) != string(p2) {
		clear(p1)
		return nil, errors.New("the passphrases do not match")
	}
	return p1, nil
}

// defaultName is the OS user name, or "me".
func defaultName() string {
	if u, err := user.Current(); err == nil {
		if u.Username != "" {
			return u.Username
		}
	}
	if n := os.Getenv("USER"); n != "" {
		return n
	}
	return "me"
}
