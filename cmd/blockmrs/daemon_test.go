package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDaemon runs `blockmrs daemon` as a real process on 127.0.0.1: it
// reports its peer ID and API, the API answers with the token and refuses
// without it, other commands run through it, and SIGTERM shuts it down
// cleanly, releasing the repo.
func TestDaemon(t *testing.T) {
	n := newNode(t, "")
	id := n.initAccount("--name", "Clinic", "--role", "clinic", "--no-passphrase")
	n.env["BLOCKMRS_API"] = "127.0.0.1:0"
	n.env["BLOCKMRS_LISTEN"] = "/ip4/127.0.0.1/tcp/0"
	cmd := n.command("daemon", "--json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	var info struct {
		PeerID string   `json:"peer_id"`
		Listen []string `json:"listen"`
		API    string   `json:"api"`
	}
	decoded := make(chan error, 1)
	go func() {
		br := bufio.NewReader(stdout)
		decoded <- json.NewDecoder(br).Decode(&info)
		io.Copy(io.Discard, br)
	}()
	select {
	case err := <-decoded:
		if err != nil {
			t.Fatalf("daemon --json output: %v (stderr %s)", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not start: %s", stderr.String())
	}
	if !strings.HasPrefix(info.PeerID, "12D3KooW") || !strings.HasPrefix(info.API, "http://127.0.0.1:") || len(info.Listen) == 0 {
		t.Fatalf("daemon info %+v", info)
	}
	if info.PeerID == id {
		t.Fatal("the node's peer ID is the account's key: they must be separate keys")
	}

	token, err := os.ReadFile(filepath.Join(n.dir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	get := func(auth string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", info.API+"/api/v1/id", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	if resp, body := get(""); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"error"`) {
		t.Fatalf("no token: %d %s", resp.StatusCode, body)
	}
	resp, body := get(strings.TrimSpace(string(token)))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), id) || !strings.Contains(string(body), info.PeerID) {
		t.Fatalf("with token: %d %s", resp.StatusCode, body)
	}

	var peers struct {
		Peers []struct {
			ID string `json:"id"`
		} `json:"peers"`
	}
	n.json(&peers, "peers", "--json") // through the API
	if len(peers.Peers) != 0 {
		t.Fatalf("peers of a lone daemon: %+v", peers)
	}

	if out := n.ok("ls"); !strings.Contains(out, "CID") { // through the API
		t.Fatalf("ls while the daemon runs: %q", out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon exit after SIGTERM: %v (stderr %s)", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop on SIGTERM")
	}
	n.ok("id") // the repo is free again
	if r := n.run("peers"); r.code != 1 || !strings.Contains(r.stderr, "no daemon") {
		t.Fatalf("peers without a daemon: exit %d, %q", r.code, r.stderr)
	}

	// The account declares the node as its device.
	n.ok("device", "add", info.PeerID, "--name", "clinic server")
	var list struct {
		Devices []struct {
			PeerID string `json:"peer_id"`
			Name   string `json:"name"`
		} `json:"devices"`
	}
	n.json(&list, "device", "ls", "--json")
	devices := list.Devices
	if len(devices) != 1 || devices[0].PeerID != info.PeerID || devices[0].Name != "clinic server" {
		t.Fatalf("device ls: %+v", devices)
	}
	if r := n.run("device", "add", "not-a-peer"); r.code != 1 || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("bad peer ID: exit %d, %q", r.code, r.stderr)
	}
	n.ok("device", "rm", info.PeerID)
	n.json(&list, "device", "ls", "--json")
	if devices = list.Devices; len(devices) != 0 {
		t.Fatalf("device ls after rm: %+v", devices)
	}
}
