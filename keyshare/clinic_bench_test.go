package keyshare

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/blockmrs/blockmrs/protocol"
)

// The clinic repo builder: the node of a clinic with three clinicians
// (local accounts, the clinic node their device), N records spread over
// N/10 patients (remote accounts, each with its own device), every record
// written by a clinician about a patient and acknowledged by her, one
// patient with a declared replica, and an outside GP granted that
// patient's records. Records are small raw blocks of random bytes and
// wrapped keys are random bytes of the right size: access decisions never
// decrypt, so this measures exactly what a decision costs while the
// builder stays fast (real age ciphertext would only cost build time).
//
// Benchmarks: go test -run '^$' -bench 'Clinic' -benchtime 2000x ./keyshare
// (BENCHMARKS.md has the table; scripts/bench-policy.sh runs them and
// draws docs/bench-policy.svg).

type clinicRepo struct {
	repo       *Repo
	self       string // the clinic node
	clinicians []*Keys
	patients   []*Keys
	patNode    []string // each patient's device
	replica    string   // patient 0's replica
	gp         *Keys
	gpNode     string
	recs       [][]cid.Cid // records per patient
}

func benchPeerID(tb testing.TB) string {
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return id.String()
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// signed signs a block of entries on top of prev (nil: genesis).
func signed(tb testing.TB, k *Keys, seq uint64, prev *cid.Cid, t int64, entries []protocol.Entry) verifiedBlock {
	b := &protocol.Block{Seq: seq, Time: t, Entries: entries}
	if prev != nil {
		l := protocol.NewLink(*prev)
		b.Prev = &l
	}
	raw, c, err := b.Sign(k.Sign)
	if err != nil {
		tb.Fatal(err)
	}
	return verifiedBlock{cid: c, block: b, raw: raw}
}

func profileEntries(tb testing.TB, k *Keys, name string, role protocol.Role, nodes ...DeviceInfo) []protocol.Entry {
	es := []protocol.Entry{protocol.NewEntry(&protocol.Profile{Name: name, Role: role, Recipient: k.Age.Recipient().String()})}
	for _, n := range nodes {
		raw, err := protocol.ParsePeerID(n.PeerID)
		if err != nil {
			tb.Fatal(err)
		}
		es = append(es, protocol.NewEntry(&protocol.Device{Peer: raw, Replica: n.Replica}))
	}
	return es
}

// openTempRepo opens a new repo in a temporary folder, closed when the
// test ends.
func openTempRepo(tb testing.TB) *Repo {
	tb.Helper()
	r, err := Open(context.Background(), tb.TempDir(), Options{Create: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// buildClinic builds the clinic repo with n records.
func buildClinic(tb testing.TB, n int) *clinicRepo {
	tb.Helper()
	ctx := context.Background()
	r := openTempRepo(tb)
	cr := &clinicRepo{repo: r, self: benchPeerID(tb), replica: benchPeerID(tb), gpNode: benchPeerID(tb)}
	r.SetNodeID(cr.self)
	for i := range 3 {
		k, err := r.CreateAccount(ctx, fmt.Sprintf("Clinician %d", i), protocol.RoleClinician, nil, DeviceInfo{PeerID: cr.self})
		if err != nil {
			tb.Fatal(err)
		}
		cr.clinicians = append(cr.clinicians, k)
	}
	np := max(n/10, 1)
	var genesis []verifiedBlock
	newRemote := func(name string, role protocol.Role, nodes ...DeviceInfo) *Keys {
		k, err := GenerateKeys()
		if err != nil {
			tb.Fatal(err)
		}
		genesis = append(genesis, signed(tb, k, 0, nil, 1, profileEntries(tb, k, name, role, nodes...)))
		return k
	}
	cr.gp = newRemote("GP", protocol.RoleClinician, DeviceInfo{PeerID: cr.gpNode})
	for i := range np {
		node := benchPeerID(tb)
		nodes := []DeviceInfo{{PeerID: node}}
		if i == 0 {
			nodes = append(nodes, DeviceInfo{PeerID: cr.replica, Replica: true})
		}
		cr.patients = append(cr.patients, newRemote(fmt.Sprintf("Patient %d", i), protocol.RolePatient, nodes...))
		cr.patNode = append(cr.patNode, node)
	}
	r.mu.Lock()
	err := r.commit(ctx, genesis)
	r.mu.Unlock()
	if err != nil {
		tb.Fatal(err)
	}

	// Records: content blocks, then the clinicians' record entries.
	cr.recs = make([][]cid.Cid, np)
	type written struct {
		rec     cid.Cid
		author  int
		patient int
	}
	var all []written
	authorOf := map[cid.Cid]int{}
	var content []blocks.Block
	for j := range n {
		data := randBytes(300)
		h, _ := mh.Sum(data, mh.SHA2_256, -1)
		c := cid.NewCidV1(cid.Raw, h)
		blk, _ := blocks.NewBlockWithCid(data, c)
		content = append(content, blk)
		all = append(all, written{rec: c, author: j % 3, patient: j % np})
		authorOf[c] = j % 3
		cr.recs[j%np] = append(cr.recs[j%np], c)
	}
	for start := 0; start < len(content); start += 4096 {
		if err := r.st.Blockstore().PutMany(ctx, content[start:min(start+4096, len(content))]); err != nil {
			tb.Fatal(err)
		}
	}
	roots := make([]cid.Cid, len(all))
	for i, w := range all {
		roots[i] = w.rec
	}
	if err := r.indexRecords(ctx, roots); err != nil {
		tb.Fatal(err)
	}
	var vbs []verifiedBlock
	claimBlock := map[cid.Cid]cid.Cid{}
	const perBlock = 1000 // record entries per clinician block (well under the 1 MiB block limit)
	for ci, k := range cr.clinicians {
		st, err := r.state(ctx, k.ID)
		if err != nil {
			tb.Fatal(err)
		}
		prev, seq := st.head(), st.Seq
		var mine []written
		for _, w := range all {
			if w.author == ci {
				mine = append(mine, w)
			}
		}
		for start := 0; start < len(mine); start += perBlock {
			var es []protocol.Entry
			for _, w := range mine[start:min(start+perBlock, len(mine))] {
				p := cr.patients[w.patient]
				es = append(es, protocol.NewEntry(&protocol.Record{
					Record: protocol.NewLink(w.rec), Subject: p.Public(), Meta: randBytes(280),
					Keys: []protocol.WrappedKey{{To: k.Public(), Key: randBytes(200)}, {To: p.Public(), Key: randBytes(200)}},
				}))
			}
			seq++
			vb := signed(tb, k, seq, &prev, time.Now().UnixMilli(), es)
			for _, e := range es {
				claimBlock[e.Body.(*protocol.Record).Record.Cid] = vb.cid
			}
			vbs = append(vbs, vb)
			prev = vb.cid
		}
	}
	// Each patient acknowledges her records; patient 0 grants them to
	// the GP.
	for i, p := range cr.patients {
		genesisCID := genesis[i+1].cid
		var es []protocol.Entry
		for _, c := range cr.recs[i] {
			author := cr.clinicians[authorOf[c]].Public()
			es = append(es, protocol.NewEntry(&protocol.Ack{Record: protocol.NewLink(c), Author: author, Block: protocol.NewLink(claimBlock[c])}))
		}
		if i == 0 {
			g := &protocol.Grant{To: cr.gp.Public()}
			for _, c := range cr.recs[0] {
				g.Keys = append(g.Keys, protocol.RecordKey{Record: protocol.NewLink(c), Key: randBytes(200)})
			}
			es = append(es, protocol.NewEntry(g))
		}
		if len(es) > 0 {
			vbs = append(vbs, signed(tb, p, 1, &genesisCID, time.Now().UnixMilli(), es))
		}
	}
	r.mu.Lock()
	err = r.commit(ctx, vbs)
	r.mu.Unlock()
	if err != nil {
		tb.Fatal(err)
	}
	return cr
}

// decisionCases are the wants measured: who asks for which block, and the
// answer the policy must give.
func (cr *clinicRepo) decisionCases(tb testing.TB) []struct {
	name string
	peer string
	c    cid.Cid
	want bool
} {
	last := len(cr.patients) - 1
	head, _, err := cr.repo.blockAt(context.Background(), cr.clinicians[0].ID, 1)
	if err != nil {
		tb.Fatal(err)
	}
	return []struct {
		name string
		peer string
		c    cid.Cid
		want bool
	}{
		{"permitted", cr.patNode[last], cr.recs[last][0], true},
		{"refused", cr.patNode[last], cr.recs[0][0], false},
		{"unknown peer", benchPeerID(tb), cr.recs[0][0], false},
		{"replica", cr.replica, cr.recs[0][0], true},
		{"grantee", cr.gpNode, cr.recs[0][0], true},
		{"chain block", cr.patNode[last], head, true},
	}
}

// The builder's clinic answers every measured want as the policy says,
// and ChainsServedTo lists exactly the chains MayServe serves.
func TestClinicRepoDecisions(t *testing.T) {
	ctx := context.Background()
	cr := buildClinic(t, 200)
	for _, tc := range cr.decisionCases(t) {
		ok, why, err := mayServe(ctx, cr.repo, tc.peer, tc.c)
		if err != nil || ok != tc.want {
			t.Errorf("%s: %v (%s) %v, want %v", tc.name, ok, why, err, tc.want)
		}
	}
	accts, err := cr.repo.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{cr.patNode[0], cr.patNode[7], cr.replica, cr.gpNode, benchPeerID(t)} {
		var want []protocol.AccountID
		for _, a := range accts {
			if d, err := cr.repo.MayServe(ctx, p, a.Head); err != nil {
				t.Fatal(err)
			} else if d.Allow {
				want = append(want, a.ID)
			}
		}
		got, err := cr.repo.ChainsServedTo(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("ChainsServedTo(%s) = %v, MayServe serves %v", p, got, want)
		}
		if p == cr.patNode[7] && len(got) != 1+3 {
			t.Errorf("patient 7's node is entitled to %d chains, want her own and the 3 clinicians'", len(got))
		}
	}
}

var clinicSizes = []int{1_000, 10_000, 100_000}

// BenchmarkClinicDecision measures one want's decision at each size.
func BenchmarkClinicDecision(b *testing.B) {
	ctx := context.Background()
	for _, n := range clinicSizes {
		cr := buildClinic(b, n)
		for _, tc := range cr.decisionCases(b) {
			b.Run(fmt.Sprintf("records=%d/%s", n, tc.name), func(b *testing.B) {
				for b.Loop() {
					d, err := cr.repo.MayServe(ctx, tc.peer, tc.c)
					if err != nil || d.Allow != tc.want {
						b.Fatalf("%+v %v", d, err)
					}
				}
			})
		}
	}
}

// BenchmarkClinicAnnounce measures what chain sync does when a peer
// connects: list the chains the peer is entitled to (then their heads are
// announced), for a patient's node and for the GP's.
func BenchmarkClinicAnnounce(b *testing.B) {
	ctx := context.Background()
	for _, n := range clinicSizes {
		cr := buildClinic(b, n)
		for name, p := range map[string]string{"patient": cr.patNode[len(cr.patNode)-1], "gp": cr.gpNode} {
			b.Run(fmt.Sprintf("records=%d/accounts=%d/%s", n, len(cr.patients)+4, name), func(b *testing.B) {
				for b.Loop() {
					ids, err := cr.repo.ChainsServedTo(ctx, p)
					if err != nil || len(ids) == 0 {
						b.Fatal(ids, err)
					}
				}
			})
		}
	}
}

// BenchmarkClinicChainChange measures what one chain change costs the
// node afterwards: WantedRecords and DropRevoked over the records the
// change touched (one record), against the full pass over every record.
func BenchmarkClinicChainChange(b *testing.B) {
	ctx := context.Background()
	for _, n := range clinicSizes {
		cr := buildClinic(b, n)
		one := cr.recs[0][0]
		b.Run(fmt.Sprintf("records=%d/wanted-one-change", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := cr.repo.WantedRecords(ctx, cr.self, one); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("records=%d/drop-one-change", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := cr.repo.DropRevoked(ctx, cr.self, one); err != nil {
					b.Fatal(err)
				}
			}
		})
		if n <= 10_000 {
			b.Run(fmt.Sprintf("records=%d/wanted-full", n), func(b *testing.B) {
				for b.Loop() {
					if _, err := cr.repo.WantedRecords(ctx, cr.self); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
