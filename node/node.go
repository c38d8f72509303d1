// Package node is the running BlockMRS participant. It locates and opens
// the repo (RepoPath, OpenRepo) and runs the daemon (Daemon.Run): the
// libp2p host and the local HTTP API over one repo.
//
// Its subfolders, one per concern as go-libp2p keeps one per protocol:
//
//   - config: the versioned config.json and its BLOCKMRS_* overrides;
//   - p2p: the node key and the libp2p host (transports, security,
//     resource limits, NAT traversal), bootstrap and mDNS;
//   - exchange: bitswap block exchange, every want checked against the
//     access index;
//   - chainsync: chain heads asked for and announced to entitled peers,
//     missing chain blocks pulled and verified, granted records fetched
//     and revoked ones dropped;
//   - requests: access requests and their answers, delivered to the
//     nodes the target account's chain declares;
//   - api: the local HTTP API, its token and its OpenAPI description.
//
// A repo folder holds, besides what keyshare and store keep there:
// config.json, node.key (the node's libp2p identity, mode 0600), api.token
// (mode 0600) and, while a daemon runs, api.addr.
package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/audit"
	"github.com/blockmrs/blockmrs/node/config"
)

// EnvPath names the environment variable that sets the repo folder.
const EnvPath = "BLOCKMRS_PATH"

// DefaultRepoFolder is the repo folder's name under the home folder.
const DefaultRepoFolder = ".blockmrs"

// RepoPath resolves the repo folder: explicit when not empty, else
// $BLOCKMRS_PATH, else ~/.blockmrs.
func RepoPath(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p := os.Getenv(EnvPath); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no repo given, no $%s and no home folder: %w", EnvPath, err)
	}
	return filepath.Join(home, DefaultRepoFolder), nil
}

// OpenRepo opens the repo in dir, creating it when create is set. The repo
// is locked until closed, so one process at a time uses it. Its audit log
// (node/audit) is opened with it and closes with it. When dir holds a
// config file, its trusted authorities ("trust") are the repo's
// configured ones (see keyshare.Repo.SetConfigTrust); a config file that
// does not load is an error, as it is for the daemon.
func OpenRepo(ctx context.Context, dir string, create bool) (*keyshare.Repo, error) {
	repo, err := keyshare.Open(ctx, dir, keyshare.Options{Create: create})
	if err != nil {
		return nil, err
	}
	if _, err := audit.Attach(repo, dir, audit.Options{}); err != nil {
		return nil, errors.Join(err, repo.Close())
	}
	if err := applyConfigTrust(repo, dir); err != nil {
		repo.Close()
		return nil, err
	}
	return repo, nil
}

// AuditLog returns the audit log OpenRepo attached to repo, nil if none.
func AuditLog(repo *keyshare.Repo) *audit.Log {
	return audit.Of(repo)
}

// applyConfigTrust gives repo the trusted authorities of dir's config
// file, if there is one.
func applyConfigTrust(repo *keyshare.Repo, dir string) error {
	if _, err := os.Stat(config.Path(dir)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	cfg, err := config.Load(config.Path(dir))
	if err != nil {
		return err
	}
	trust, err := cfg.TrustedAuthorities()
	if err != nil {
		return err
	}
	return repo.SetConfigTrust(trust)
}
