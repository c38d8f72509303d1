// Package node is the running BlockMRS participant. In this release it
// locates and opens the repo; the libp2p host, block exchange with access
// enforced on every request, chain sync, access requests and the local
// HTTP API arrive here next, one subfolder per protocol.
package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/blockmrs/blockmrs/keyshare"
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
// is locked until closed, so one process at a time uses it.
func OpenRepo(ctx context.Context, dir string, create bool) (*keyshare.Repo, error) {
	return keyshare.Open(ctx, dir, keyshare.Options{Create: create})
}
