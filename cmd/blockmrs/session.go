package main

// This file holds how a subcommand gets at the repo and its accounts:
// opening and closing the repo around the command's work, the acting
// account (--account) and its keys, and accounts named by other flags.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/blockmrs/blockmrs/keyshare"
	bmnode "github.com/blockmrs/blockmrs/node"
	"github.com/blockmrs/blockmrs/node/api"
)

// openRepo opens the existing repo. A repo another process holds gives a
// *repoLockedError (see execute: the command then runs in the daemon).
func (f *cmdFlags) openRepo(ctx context.Context) (*keyshare.Repo, error) {
	dir, err := f.repoPath()
	if err != nil {
		return nil, err
	}
	slog.Debug("open repo", "dir", dir)
	repo, err := bmnode.OpenRepo(ctx, dir, false)
	if errors.Is(err, keyshare.ErrRepoLocked) {
		return nil, &repoLockedError{dir: dir, err: err}
	}
	return repo, err
}

// daemonClient returns a client of the local API of the daemon running
// for the repo (for commands that only ask the daemon).
func (f *cmdFlags) daemonClient() (*api.Client, error) {
	dir, err := f.repoPath()
	if err != nil {
		return nil, err
	}
	return api.NewClient(dir)
}

// closeRepo closes r and reports a close error if nothing failed before.
func closeRepo(r *keyshare.Repo, err *error) {
	if cerr := r.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close repo: %w", cerr)
	}
}

// withRepo opens the existing repo, runs fn on it and closes it; a close
// error is reported when fn succeeded. Inside the daemon it runs fn on the
// daemon's open repo (--repo is not consulted) and leaves it open. It is
// the one place commands get a repo from.
func (f *cmdFlags) withRepo(ctx context.Context, fn func(repo *keyshare.Repo) error) (err error) {
	f.bind(ctx)
	if repo := daemonRepo(ctx); repo != nil {
		return fn(repo)
	}
	repo, err := f.openRepo(ctx)
	if err != nil {
		return err
	}
	defer closeRepo(repo, &err)
	return fn(repo)
}

// withSelected is withRepo for commands that act as the selected account
// without needing its keys.
func (f *cmdFlags) withSelected(ctx context.Context, fn func(repo *keyshare.Repo, me keyshare.AccountInfo) error) error {
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		me, err := f.selected(ctx, repo)
		if err != nil {
			return err
		}
		return fn(repo, me)
	})
}

// withKeys is withRepo for commands that need the selected account's
// keys: they are unlocked first thing.
func (f *cmdFlags) withKeys(ctx context.Context, fn func(repo *keyshare.Repo, keys *keyshare.Keys) error) error {
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		_, keys, err := f.unlockSelected(ctx, repo)
		if err != nil {
			return err
		}
		return fn(repo, keys)
	})
}

// withKeysFor is withKeys for commands that act towards another account,
// the one given to the flag --name: it is resolved before the keys are
// unlocked, so a mistyped account fails before any passphrase prompt.
func (f *cmdFlags) withKeysFor(ctx context.Context, name, value string, fn func(repo *keyshare.Repo, keys *keyshare.Keys, other keyshare.AccountInfo) error) error {
	return f.withRepo(ctx, func(repo *keyshare.Repo) error {
		other, err := resolveFlag(ctx, repo, name, value)
		if err != nil {
			return err
		}
		_, keys, err := f.unlockSelected(ctx, repo)
		if err != nil {
			return err
		}
		return fn(repo, keys, other)
	})
}

// resolveLocal finds a local account by NAME, ID or ID suffix ("" for the
// default account).
func resolveLocal(ctx context.Context, r *keyshare.Repo, s string) (keyshare.AccountInfo, error) {
	info, err := r.Resolve(ctx, s, true)
	if err != nil {
		return info, fmt.Errorf("account: %w", err)
	}
	return info, nil
}

// selected returns the acting local account (--account, else the default).
func (f *cmdFlags) selected(ctx context.Context, r *keyshare.Repo) (keyshare.AccountInfo, error) {
	f.bind(ctx)
	info, err := resolveLocal(ctx, r, f.account)
	if err != nil {
		return info, err
	}
	slog.Debug("account", "id", info.ID, "name", info.Name, "encrypted", info.Encrypted)
	return info, nil
}

// selectedIfAny is selected for work that a repo without an account of
// its own simply skips: without --account, not finding the default
// account is no error but ok == false.
func (f *cmdFlags) selectedIfAny(ctx context.Context, r *keyshare.Repo) (info keyshare.AccountInfo, ok bool, err error) {
	info, err = resolveLocal(ctx, r, f.account)
	switch {
	case err == nil:
		return info, true, nil
	case f.account == "":
		return info, false, nil
	}
	return info, false, err
}

// unlockSelected resolves the acting account and unlocks its keys.
func (f *cmdFlags) unlockSelected(ctx context.Context, r *keyshare.Repo) (keyshare.AccountInfo, *keyshare.Keys, error) {
	info, err := f.selected(ctx, r)
	if err != nil {
		return info, nil, err
	}
	k, err := unlock(ctx, r, info)
	return info, k, err
}

// resolveFlag finds the account (local or contact) given to the flag
// --name as NAME, ID or ID suffix; the error names the flag.
func resolveFlag(ctx context.Context, r *keyshare.Repo, name, value string) (keyshare.AccountInfo, error) {
	info, err := r.Resolve(ctx, value, false)
	if err != nil {
		return info, fmt.Errorf("--%s: %w", name, err)
	}
	return info, nil
}
