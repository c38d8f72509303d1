package node

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
)

func TestRepoPath(t *testing.T) {
	t.Setenv(EnvPath, "/from/env")
	if got, _ := RepoPath("/explicit"); got != "/explicit" {
		t.Fatalf("explicit: %s", got)
	}
	if got, _ := RepoPath(""); got != "/from/env" {
		t.Fatalf("env: %s", got)
	}
	t.Setenv(EnvPath, "")
	t.Setenv("HOME", "/home/pat")
	if got, _ := RepoPath(""); got != filepath.Join("/home/pat", DefaultRepoFolder) {
		t.Fatalf("default: %s", got)
	}
}

func TestOpenRepo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := OpenRepo(ctx, dir, false); !errors.Is(err, keyshare.ErrNoRepo) {
		t.Fatalf("open missing repo: %v", err)
	}
	r, err := OpenRepo(ctx, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRepo(ctx, dir, false); !errors.Is(err, keyshare.ErrRepoLocked) {
		t.Fatalf("second open: %v", err)
	}
	r.Close()
	r, err = OpenRepo(ctx, dir, false)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	r.Close()
}
