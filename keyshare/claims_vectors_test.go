package keyshare

// Claim vectors for third-party implementations (PROTOCOL.md §6 and §11):
// testdata/claims.json holds real signed chains — a patient's record, a
// forged claim on it, a clinician's acknowledged record and one still
// pending — and the decisions PROTOCOL §6 and §10 call for, stated by hand
// below (claimExpectations), not computed. The test checks that the file's
// chains give exactly those decisions: load the blocks into a fresh repo
// and evaluate. Record content is random ciphertext, so the file is not
// byte-stable; regenerate it with
//
//	go test ./keyshare -run TestClaimVectors -update-claims
//
// and the test fails unless the code agrees with every expectation.

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

var updateClaims = flag.Bool("update-claims", false, "rewrite testdata/claims.json")

const claimsPath = "testdata/claims.json"

// claimVectors is the file.
type claimVectors struct {
	Description []string `json:"description"`
	// Now is the evaluation time, Unix ms.
	Now int64 `json:"now"`
	// Accounts maps a name to its account ID.
	Accounts map[string]protocol.AccountID `json:"accounts"`
	// Records maps a name to a record CID.
	Records map[string]string `json:"records"`
	// ChainBlocks are every chain block, hex, in an order that applies
	// (each after its predecessor); Heads the chain heads.
	ChainBlocks []string `json:"chain_blocks"`
	Heads       []string `json:"heads"`
	// RecordBlocks are the blocks of the records' DAGs (CID → hex), held
	// by every node the expectations describe.
	RecordBlocks map[string]string `json:"record_blocks"`
	Expect       []claimExpect     `json:"expect"`
}

// claimExpect is one expected decision.
type claimExpect struct {
	// What: "claim" (proof and contest of the claim on Record by Author),
	// "counts" (whether that claim counts on a node vouching for Vouch),
	// "serve" (whether a node vouching for Vouch serves Record's root
	// block to a device of Peer), "view" (the authors of Account's view of
	// Record, in order).
	What      string   `json:"what"`
	Record    string   `json:"record"`
	Author    string   `json:"author,omitempty"`
	Vouch     []string `json:"vouch,omitempty"`
	Peer      string   `json:"peer,omitempty"`
	Account   string   `json:"account,omitempty"`
	Proof     string   `json:"proof,omitempty"`
	Contested bool     `json:"contested,omitempty"`
	Allow     bool     `json:"allow,omitempty"`
	View      []string `json:"view,omitempty"`
	Rule      string   `json:"rule,omitempty"` // informative: the reference's rule name
	Why       string   `json:"why"`
}

// claimExpectations are the decisions, written by hand from PROTOCOL §6.
func claimExpectations() []claimExpect {
	return []claimExpect{
		{What: "claim", Record: "R", Author: "pat", Proof: "own", Contested: true, Why: "Pat's own record; Mallory also claims it"},
		{What: "claim", Record: "R", Author: "mal", Proof: "pending", Contested: true, Why: "Mallory's claim names Pat as subject; Pat never acknowledged it"},
		{What: "claim", Record: "D", Author: "doc", Proof: "acknowledged", Why: "Doc's record about Pat, acknowledged by Pat's ack naming Doc and its block"},
		{What: "claim", Record: "P", Author: "doc", Proof: "pending", Why: "Doc's later record about Pat, not acknowledged yet"},
		{What: "counts", Record: "R", Author: "pat", Vouch: []string{"pat"}, Allow: true, Rule: string(RuleClaimVouched), Why: "Pat's node vouches for its author"},
		{What: "counts", Record: "R", Author: "mal", Vouch: []string{"pat"}, Rule: string(RuleClaimPending), Why: "a pending claim by someone other than its subject counts only where its author is vouched for"},
		{What: "counts", Record: "R", Author: "mal", Vouch: []string{"mal"}, Allow: true, Rule: string(RuleClaimVouched), Why: "Mallory's own node vouches for Mallory (and holds nothing of Pat's)"},
		{What: "counts", Record: "R", Author: "pat", Vouch: []string{}, Rule: string(RuleClaimContested), Why: "a node vouching for neither party does not take sides in a contest"},
		{What: "counts", Record: "D", Author: "doc", Vouch: []string{}, Allow: true, Rule: string(RuleClaimProven), Why: "proven and uncontested: counts everywhere"},
		{What: "counts", Record: "P", Author: "doc", Vouch: []string{"pat"}, Rule: string(RuleClaimPending), Why: "not acknowledged yet: Pat's node gives it no weight"},
		{What: "counts", Record: "P", Author: "doc", Vouch: []string{"doc"}, Allow: true, Rule: string(RuleClaimVouched), Why: "Doc's node vouches for its own claim, so it can deliver the record to Pat"},
		{What: "serve", Record: "R", Vouch: []string{"pat"}, Peer: "gus", Allow: true, Rule: string(RuleServeReader), Why: "Gus holds a live grant from Pat"},
		{What: "serve", Record: "R", Vouch: []string{"pat"}, Peer: "doc", Rule: string(RuleServeNoReader), Why: "Pat revoked Doc"},
		{What: "serve", Record: "R", Vouch: []string{"pat"}, Peer: "mal", Rule: string(RuleServeNoReader), Why: "Mallory's claim does not count on Pat's node"},
		{What: "serve", Record: "P", Vouch: []string{"pat"}, Peer: "pat", Rule: string(RuleServeNoClaim), Why: "Pat's node does not serve under a claim it has not seen proven"},
		{What: "serve", Record: "P", Vouch: []string{"doc"}, Peer: "pat", Allow: true, Rule: string(RuleServeReader), Why: "Doc's node serves its new record to its subject"},
		{What: "view", Record: "R", Account: "pat", View: []string{"pat", "mal"}, Why: "Pat's own claim first, though Mallory's is dated earlier"},
		{What: "view", Record: "R", Account: "gus", View: []string{"pat", "mal"}, Why: "the proven claim before the pending one"},
	}
}

func TestClaimVectors(t *testing.T) {
	if *updateClaims {
		writeClaimVectors(t)
	}
	data, err := os.ReadFile(claimsPath)
	if err != nil {
		t.Fatalf("%v (run with -update-claims to create it)", err)
	}
	var v claimVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if want := claimExpectations(); !slices.EqualFunc(v.Expect, want, func(a, b claimExpect) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		t.Fatalf("%s holds other expectations than claimExpectations(); run with -update-claims", claimsPath)
	}
	checkClaimVectors(t, &v)
}

// checkClaimVectors loads the file's blocks into a fresh repo and checks
// every expectation.
func checkClaimVectors(t *testing.T, v *claimVectors) {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx, t.TempDir(), Options{Create: true, Clock: func() time.Time { return time.UnixMilli(v.Now) }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	offered := map[cid.Cid][]byte{}
	for _, h := range v.ChainBlocks {
		raw, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		offered[protocol.BlockCID(raw)] = raw
	}
	var heads []cid.Cid
	for _, h := range v.Heads {
		c, err := cid.Decode(h)
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, c)
	}
	var blks []blocks.Block
	for cs, h := range v.RecordBlocks {
		raw, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		c, err := cid.Decode(cs)
		if err != nil {
			t.Fatal(err)
		}
		b, err := blocks.NewBlockWithCid(raw, c)
		if err != nil {
			t.Fatal(err)
		}
		blks = append(blks, b)
	}
	if err := r.st.Blockstore().PutMany(ctx, blks); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ApplyChains(ctx, heads, offered); err != nil {
		t.Fatal(err)
	}
	name := map[protocol.AccountID]string{}
	for n, id := range v.Accounts {
		name[id] = n
	}
	rec := func(n string) cid.Cid {
		c, err := cid.Decode(v.Records[n])
		if err != nil {
			t.Fatalf("record %s: %v", n, err)
		}
		if err := r.IndexRecordBlocks(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	vouchOf := func(ns []string) vouchSet {
		vs := vouchSet{}
		for _, n := range ns {
			vs[v.Accounts[n]] = vouchLocal
		}
		return vs
	}
	for _, e := range v.Expect {
		t.Run(e.What+"/"+e.Record+"/"+e.Author+e.Peer+e.Account+"/"+strings.Join(e.Vouch, ","), func(t *testing.T) {
			c := rec(e.Record)
			as, err := r.accessAll(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			var claim *Access
			for _, a := range as {
				if a.Known && a.Author == v.Accounts[e.Author] {
					claim = a
				}
			}
			switch e.What {
			case "claim":
				if claim == nil || string(claim.Proof) != e.Proof || claim.Contested != e.Contested {
					t.Fatalf("claim: %+v, want proof %s contested %v (%s)", claim, e.Proof, e.Contested, e.Why)
				}
			case "counts":
				if claim == nil {
					t.Fatal("no such claim")
				}
				d := claimCounts(claim, len(as) > 1, vouchOf(e.Vouch))
				if d.Allow != e.Allow || string(d.Rule) != e.Rule {
					t.Fatalf("counts: %+v, want %v by %s (%s)", d, e.Allow, e.Rule, e.Why)
				}
			case "serve":
				peer := peerRoles{acting: []protocol.AccountID{v.Accounts[e.Peer]}}
				d := serveRecordBlock(peer, as, true, vouchOf(e.Vouch))
				if d.Allow != e.Allow || string(d.Rule) != e.Rule {
					t.Fatalf("serve: %+v, want %v by %s (%s)", d, e.Allow, e.Rule, e.Why)
				}
			case "view":
				var got []string
				for _, a := range viewOrder(as, v.Accounts[e.Account], vouchOf([]string{e.Account})) {
					got = append(got, name[a.Author])
				}
				if !slices.Equal(got, e.View) {
					t.Fatalf("view: %v, want %v (%s)", got, e.View, e.Why)
				}
			default:
				t.Fatalf("unknown expectation %q", e.What)
			}
		})
	}
}

// writeClaimVectors builds the scene with the real API and writes the
// file, with claimExpectations as its expectations.
func writeClaimVectors(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	pat := newParty(t, "Pat", protocol.RolePatient)
	gus := newParty(t, "Gus", protocol.RoleClinician)
	doc := newParty(t, "Doc", protocol.RoleClinician)
	mal := newEarlyParty(t, "Mallory", protocol.RolePatient)
	for _, p := range []*party{gus, doc} {
		send(t, p, pat)
		send(t, pat, p)
	}
	rec, err := pat.repo.AddRecord(ctx, pat.keys, NewRecord{Title: "HbA1c", Kind: protocol.KindNote, MediaType: "text/plain", Body: strings.NewReader("HbA1c 5.4 %")})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*party{gus, doc} {
		if _, err := pat.repo.Grant(ctx, pat.keys, []cid.Cid{rec}, p.keys.ID, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pat.repo.Revoke(ctx, pat.keys, []cid.Cid{rec}, doc.keys.ID); err != nil {
		t.Fatal(err)
	}
	f, err := pat.repo.facts(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	forge(t, mal, pat.keys.ID, nil, rec, f.Claims[0].Meta, pat)
	send(t, pat, doc)
	d, err := doc.repo.AddRecord(ctx, doc.keys, NewRecord{Title: "Lipids", Kind: protocol.KindNote, MediaType: "text/plain", Subject: pat.keys.ID, Body: strings.NewReader("LDL 2.1")})
	if err != nil {
		t.Fatal(err)
	}
	send(t, doc, pat)
	if n, err := pat.repo.Acknowledge(ctx, pat.keys); err != nil || n != 1 {
		t.Fatalf("ack: %d %v", n, err)
	}
	p, err := doc.repo.AddRecord(ctx, doc.keys, NewRecord{Title: "Follow-up", Kind: protocol.KindNote, MediaType: "text/plain", Subject: pat.keys.ID, Body: strings.NewReader("in 3 months")})
	if err != nil {
		t.Fatal(err)
	}
	send(t, doc, pat)

	out := &claimVectors{
		Description: []string{
			"BlockMRS claim vectors (PROTOCOL.md §6, §10): chains and the decisions they call for.",
			"Load chain_blocks (each hex block's CID is CIDv1 dag-cbor sha2-256 of its bytes) and record_blocks, apply the chains ending at heads, and evaluate at time now.",
			"R is Pat's record, which Gus may read and Doc was revoked from; Mallory signed a claim on R naming Pat as subject, dated before it, with junk keys and R's sealed envelope copied. D is Doc's record about Pat, acknowledged by Pat; P is Doc's later record about Pat, not acknowledged.",
			"Expectations are written by hand in keyshare/claims_vectors_test.go; regenerate with `go test ./keyshare -run TestClaimVectors -update-claims`.",
		},
		Now:          pat.repo.now().UnixMilli(),
		Accounts:     map[string]protocol.AccountID{"pat": pat.keys.ID, "gus": gus.keys.ID, "doc": doc.keys.ID, "mal": mal.keys.ID},
		Records:      map[string]string{"R": rec.String(), "D": d.String(), "P": p.String()},
		RecordBlocks: map[string]string{},
		Expect:       claimExpectations(),
	}
	for _, id := range []protocol.AccountID{pat.keys.ID, gus.keys.ID, doc.keys.ID, mal.keys.ID} {
		head := pat.repo.mustHead(t, id)
		out.Heads = append(out.Heads, head.String())
		var chain []string
		for c := head; ; {
			b, err := pat.repo.st.Blockstore().Get(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			chain = append([]string{hex.EncodeToString(b.RawData())}, chain...)
			blk, _ := protocol.DecodeBlock(b.RawData())
			if blk.Prev == nil {
				break
			}
			c = blk.Prev.Cid
		}
		out.ChainBlocks = append(out.ChainBlocks, chain...)
	}
	for _, c := range []cid.Cid{rec, d, p} {
		if err := pat.repo.st.Walk(ctx, c, func(b blocks.Block) error {
			out.RecordBlocks[b.Cid().String()] = hex.EncodeToString(b.RawData())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(claimsPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
