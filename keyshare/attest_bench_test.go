package keyshare

// Attestation-chain evaluation (BENCHMARKS.md, "Attested roles"): one
// repo holds a trusted authority, the chains of regional authorities
// under it, a clinic that attests 1,000 clinicians, and their profiles.
// The benchmarks time VerifiedRole on a path of 2 attestations
// (authority → clinic → clinician) and on the longest path allowed
// (MaxRolePath accounts), and a directory answer over the 1,000.
//
//	go test -run '^$' -bench 'Attest|Directory' -benchtime 2000x ./keyshare

import (
	"context"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

type attestBench struct {
	repo       *Repo
	auth       *Keys
	clinic     *Keys // attested by auth directly
	deepClinic *Keys // attested at the end of a chain of regional authorities
	doc        protocol.AccountID
	deepDoc    protocol.AccountID
}

// genesisOf makes a signed first block for a new account of role.
func genesisOf(tb testing.TB, name string, role protocol.Role) (*Keys, cid.Cid, []byte) {
	tb.Helper()
	k, err := GenerateKeys()
	if err != nil {
		tb.Fatal(err)
	}
	b := &protocol.Block{Seq: 0, Time: 1, Entries: []protocol.Entry{protocol.NewEntry(&protocol.Profile{Name: name, Role: role, Recipient: k.Age.Recipient().String()})}}
	raw, c, err := b.Sign(k.Sign)
	if err != nil {
		tb.Fatal(err)
	}
	return k, c, raw
}

func newAttestBench(tb testing.TB, clinicians int) *attestBench {
	tb.Helper()
	ctx := context.Background()
	r := openTempRepo(tb)
	ab := &attestBench{repo: r}
	heads := []cid.Cid{}
	offered := map[cid.Cid][]byte{}
	keep := func(k *Keys, c cid.Cid, raw []byte) *Keys {
		heads = append(heads, c)
		offered[c] = raw
		return k
	}
	ab.auth = keep(genesisOf(tb, "Authority", protocol.RoleAuthority))
	ab.clinic = keep(genesisOf(tb, "Clinic", protocol.RoleClinic))
	ab.deepClinic = keep(genesisOf(tb, "Deep Clinic", protocol.RoleClinic))
	var regions []*Keys
	for i := range MaxRolePath - 3 {
		regions = append(regions, keep(genesisOf(tb, fmt.Sprintf("Region %d", i), protocol.RoleAuthority)))
	}
	docs := make([]*Keys, clinicians)
	for i := range docs {
		docs[i] = keep(genesisOf(tb, fmt.Sprintf("Dr %04d", i), protocol.RoleClinician))
	}
	if _, err := r.ApplyChains(ctx, heads, offered); err != nil {
		tb.Fatal(err)
	}
	attest := func(by *Keys, to protocol.AccountID, role protocol.Role) protocol.Entry {
		return protocol.NewEntry(&protocol.Attestation{To: keyOf(to), Role: role})
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// The authority attests the clinic and the first region; each region
	// the next; the last region the deep clinic.
	above := ab.auth
	authEntries := []protocol.Entry{attest(ab.auth, ab.clinic.ID, protocol.RoleClinic)}
	if len(regions) > 0 {
		authEntries = append(authEntries, attest(ab.auth, regions[0].ID, protocol.RoleAuthority))
	}
	if _, err := r.appendBlock(ctx, ab.auth, authEntries); err != nil {
		tb.Fatal(err)
	}
	for i, reg := range regions {
		if i > 0 {
			if _, err := r.appendBlock(ctx, regions[i-1], []protocol.Entry{attest(regions[i-1], reg.ID, protocol.RoleAuthority)}); err != nil {
				tb.Fatal(err)
			}
		}
		above = reg
	}
	if _, err := r.appendBlock(ctx, above, []protocol.Entry{attest(above, ab.deepClinic.ID, protocol.RoleClinic)}); err != nil {
		tb.Fatal(err)
	}
	// The clinic attests every clinician, 100 to a block.
	var blocks [][]protocol.Entry
	for i := 0; i < len(docs); i += 100 {
		var es []protocol.Entry
		for _, d := range docs[i:min(i+100, len(docs))] {
			es = append(es, attest(ab.clinic, d.ID, protocol.RoleClinician))
		}
		blocks = append(blocks, es)
	}
	if _, err := r.appendBlocks(ctx, ab.clinic, blocks); err != nil {
		tb.Fatal(err)
	}
	if _, err := r.appendBlock(ctx, ab.deepClinic, []protocol.Entry{attest(ab.deepClinic, docs[0].ID, protocol.RoleClinician)}); err != nil {
		tb.Fatal(err)
	}
	ab.doc, ab.deepDoc = docs[len(docs)/2].ID, docs[0].ID
	r.trustSrc.Store(&trustSources{config: []protocol.AccountID{ab.auth.ID}})
	return ab
}

func BenchmarkAttestPath2(b *testing.B) {
	ab := newAttestBench(b, 1000)
	ctx := context.Background()
	now := ab.repo.now()
	b.ResetTimer()
	for b.Loop() {
		p, err := ab.repo.VerifiedRole(ctx, ab.doc, protocol.RoleClinician, now)
		if err != nil || !p.Verified || len(p.Path) != 3 {
			b.Fatalf("%+v %v", p, err)
		}
	}
}

func BenchmarkAttestPathMax(b *testing.B) {
	ab := newAttestBench(b, 1000)
	ctx := context.Background()
	now := ab.repo.now()
	// docs[0] is attested by both clinics: the policy tries attesters
	// in ID order, so which path it returns depends on the keys; a
	// withdrawal by the near clinic leaves only the long one.
	ab.repo.mu.Lock()
	if _, err := ab.repo.appendBlock(ctx, ab.clinic, []protocol.Entry{protocol.NewEntry(&protocol.AttestEnd{From: keyOf(ab.deepDoc)})}); err != nil {
		b.Fatal(err)
	}
	ab.repo.mu.Unlock()
	b.ResetTimer()
	for b.Loop() {
		p, err := ab.repo.VerifiedRole(ctx, ab.deepDoc, protocol.RoleClinician, now)
		if err != nil || !p.Verified || len(p.Path) != MaxRolePath {
			b.Fatalf("%+v %v", p, err)
		}
	}
}

func BenchmarkDirectoryQuery(b *testing.B) {
	ab := newAttestBench(b, 1000)
	ctx := context.Background()
	// The clinic must be local to answer: give the repo its key file.
	if err := ab.repo.importLocalForBench(ctx, ab.clinic); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		ans, err := ab.repo.AnswerDirectory(ctx, "", "Dr 0500", 0)
		if err != nil || len(ans.Entries) != 1 {
			b.Fatalf("%d entries, %v", len(ans.Entries), err)
		}
	}
}

// importLocalForBench marks an account whose chain the repo holds as
// local (a key file and the local marker), as CreateAccount would have.
func (r *Repo) importLocalForBench(ctx context.Context, k *Keys) error {
	kf, err := marshalKeyFile(k, nil)
	if err != nil {
		return err
	}
	if err := writeFileOnce(r.keyPath(k.ID), kf, 0o600); err != nil {
		return err
	}
	r.cache.invalidate()
	return putJSON(ctx, r.ds, keyLocal(k.ID), localAccount{Created: 1})
}
