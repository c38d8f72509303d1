package main

// "sidebyside node ..." prepares and runs BlockMRS node-to-node fetches
// for scripts/bench.sh, which compares them with stock Kubo-to-Kubo
// transfers of the same ciphertext:
//
//	sidebyside node setup -dir DIR -in FILE
//	    makes DIR/server (a patient's repo holding FILE as a record, the
//	    repo a `blockmrs daemon` then serves) and DIR/client (a clinic's
//	    repo with the record granted to it and its node declared, without
//	    the record's blocks); writes DIR/cid, DIR/server.peer, DIR/blocks
//	    (the record's block CIDs), DIR/ciphertext and DIR/age.key (the
//	    record's ciphertext and key, for the stock tools)
//	sidebyside node fetch -repo DIR/client -peer MULTIADDR -cid CID [-bitswap]
//	    starts a node on the client repo (loopback TCP host and exchange,
//	    as the daemon runs them), fetches the record from the peer, opens
//	    and decrypts it, and writes the plaintext to stdout; -bitswap
//	    fetches over bitswap alone
//	sidebyside node reset -repo DIR/client -cid CID -blocks DIR/blocks
//	    unpins the record and deletes its blocks (run untimed between
//	    repetitions)

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/config"
	"github.com/blockmrs/blockmrs/node/exchange"
	"github.com/blockmrs/blockmrs/node/p2p"
	"github.com/blockmrs/blockmrs/protocol"
)

func nodeMain(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: sidebyside node setup|fetch|reset ...")
	}
	fs := flag.NewFlagSet("node "+args[0], flag.ExitOnError)
	dir := fs.String("dir", "", "setup: directory for both repos and the files")
	in := fs.String("in", "", "setup: the record's content")
	repoDir := fs.String("repo", "", "fetch, reset: the client repo")
	peerAddr := fs.String("peer", "", "fetch: the server's multiaddr ending in /p2p/ID")
	cidStr := fs.String("cid", "", "fetch, reset: the record CID")
	blockList := fs.String("blocks", "", "reset: file listing the record's block CIDs")
	bitswapOnly := fs.Bool("bitswap", false, "fetch: over bitswap alone")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx := context.Background()
	switch args[0] {
	case "setup":
		return nodeSetup(ctx, *dir, *in)
	case "fetch":
		return nodeFetch(ctx, *repoDir, *peerAddr, *cidStr, *bitswapOnly)
	case "reset":
		return nodeReset(ctx, *repoDir, *cidStr, *blockList)
	}
	return fmt.Errorf("node: unknown command %q", args[0])
}

func nodeSetup(ctx context.Context, dir, in string) (err error) {
	if dir == "" || in == "" {
		return fmt.Errorf("node setup: -dir and -in are required")
	}
	srvDir, cliDir := filepath.Join(dir, "server"), filepath.Join(dir, "client")
	srv, err := keyshare.Open(ctx, srvDir, keyshare.Options{Create: true})
	if err != nil {
		return err
	}
	defer srv.Close()
	cli, err := keyshare.Open(ctx, cliDir, keyshare.Options{Create: true})
	if err != nil {
		return err
	}
	defer cli.Close()
	pat, err := srv.CreateAccount(ctx, "Pat", protocol.RolePatient, nil)
	if err != nil {
		return err
	}
	other, err := srv.CreateAccount(ctx, "Other", protocol.RolePatient, nil)
	if err != nil {
		return err
	}
	clinic, err := cli.CreateAccount(ctx, "Clinic", protocol.RoleClinic, nil)
	if err != nil {
		return err
	}
	srvKey, err := p2p.LoadOrCreateKey(srvDir)
	if err != nil {
		return err
	}
	srvID, err := peer.IDFromPrivateKey(srvKey)
	if err != nil {
		return err
	}
	cliKey, err := p2p.LoadOrCreateKey(cliDir)
	if err != nil {
		return err
	}
	cliID, err := peer.IDFromPrivateKey(cliKey)
	if err != nil {
		return err
	}
	if _, err := cli.SetDevice(ctx, clinic, cliID.String(), "bench client", false); err != nil {
		return err
	}
	if err := sendChain(ctx, cli, srv, clinic.ID, keyshare.ExportOptions{}); err != nil {
		return err
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	rec, err := srv.AddRecord(ctx, pat, keyshare.NewRecord{Title: "bench", Kind: protocol.KindFile,
		MediaType: "application/octet-stream", Body: bufio.NewReaderSize(f, 1<<20)})
	if err != nil {
		return err
	}
	if _, err := srv.Grant(ctx, pat, []cid.Cid{rec}, clinic.ID, time.Time{}); err != nil {
		return err
	}
	// The patient's chain without the record's blocks.
	if err := sendChain(ctx, srv, cli, pat.ID, keyshare.ExportOptions{For: other.ID}); err != nil {
		return err
	}
	var list []string
	if err := srv.Store().Walk(ctx, rec, func(b blocks.Block) error {
		list = append(list, b.Cid().String())
		return nil
	}); err != nil {
		return err
	}
	key, _, err := srv.RecordKey(ctx, pat, rec)
	if err != nil {
		return err
	}
	ct, err := os.Create(filepath.Join(dir, "ciphertext"))
	if err != nil {
		return err
	}
	defer ct.Close()
	r, err := srv.Store().Cat(ctx, rec)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(ct, r); err != nil {
		return err
	}
	for name, content := range map[string]string{
		"cid":            rec.String(),
		"server.peer":    srvID.String(),
		"client.account": string(clinic.ID),
		"blocks":         strings.Join(list, "\n"),
		"age.key":        key.String(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content+"\n"), 0o600); err != nil {
			return err
		}
	}
	return ct.Close()
}

func sendChain(ctx context.Context, from, to *keyshare.Repo, id protocol.AccountID, opts keyshare.ExportOptions) error {
	var buf bytes.Buffer
	if _, err := from.ExportCAR(ctx, &buf, id, opts); err != nil {
		return err
	}
	_, err := to.ImportCAR(ctx, &buf)
	return err
}

func nodeFetch(ctx context.Context, repoDir, peerAddr, cidStr string, bitswapOnly bool) error {
	rec, err := cid.Decode(cidStr)
	if err != nil {
		return err
	}
	ai, err := peer.AddrInfoFromString(peerAddr)
	if err != nil {
		return err
	}
	acct, err := os.ReadFile(filepath.Join(repoDir, "..", "client.account"))
	if err != nil {
		return err
	}
	repo, err := keyshare.Open(ctx, repoDir, keyshare.Options{})
	if err != nil {
		return err
	}
	defer repo.Close()
	keys, err := repo.Unlock(ctx, protocol.AccountID(strings.TrimSpace(string(acct))), nil)
	if err != nil {
		return err
	}
	key, err := p2p.LoadOrCreateKey(repoDir)
	if err != nil {
		return err
	}
	cfg := config.Default()
	cfg.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.MDNS = false
	h, err := p2p.NewHost(ctx, cfg, key)
	if err != nil {
		return err
	}
	defer h.Close()
	ex := exchange.New(h, repo, nil)
	defer ex.Close()
	if bitswapOnly {
		ex.DisableStream()
	}
	h.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := ex.Fetch(fctx, rec, ai.ID); err != nil {
		return err
	}
	_, rc, err := repo.OpenRecord(ctx, keys, rec)
	if err != nil {
		return err
	}
	defer rc.Close()
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	if _, err := io.Copy(w, rc); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	st := ex.Stats()
	fmt.Fprintf(os.Stderr, "node fetch: stream fetches %d, stream blocks %d, partial %d\n", st.StreamFetches, st.StreamBlocks, st.StreamPartial)
	if !bitswapOnly && st.StreamFetches != 1 {
		return fmt.Errorf("node fetch: the DAG stream did not deliver the record")
	}
	return nil
}

func nodeReset(ctx context.Context, repoDir, cidStr, blockList string) error {
	rec, err := cid.Decode(cidStr)
	if err != nil {
		return err
	}
	list, err := os.ReadFile(blockList)
	if err != nil {
		return err
	}
	repo, err := keyshare.Open(ctx, repoDir, keyshare.Options{})
	if err != nil {
		return err
	}
	defer repo.Close()
	_ = repo.Store().Unpin(ctx, rec) // not pinned before the first fetch
	for _, s := range strings.Fields(string(list)) {
		c, err := cid.Decode(s)
		if err != nil {
			return err
		}
		if err := repo.Store().Blockstore().DeleteBlock(ctx, c); err != nil {
			return err
		}
	}
	return nil
}
