package keyshare

import (
	"crypto/ed25519"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/blockmrs/blockmrs/protocol"
)

// The policy's table test: every rule of policy.go, each with the case it
// decides and the nearest case it does not (where the answer flips). The
// facts are made by hand, so the policy is tested as the pure function it
// is; the attack tests (forged_claims_test.go and the network tests) check
// that the repo and the node reach it.

// Accounts of the table: pat the patient, doc her doctor, mal an
// attacker, gp a second clinician, rep an account replicated by this node.
var (
	pat = testAccount(1)
	doc = testAccount(2)
	mal = testAccount(3)
	gp  = testAccount(4)
)

func testAccount(n byte) protocol.AccountID {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = n
	return protocol.AccountIDFromKey(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
}

var (
	recA  = testCID("record A")
	tNow  = time.UnixMilli(1_000_000)
	later = tNow.Add(time.Hour).UnixMilli()
)

func testCID(s string) cid.Cid {
	h, _ := mh.Sum([]byte(s), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, h)
}

// facts builds the record facts of one CID entry by entry.
type facts struct{ f recordFacts }

func ref(id protocol.AccountID, seq uint64) EntryRef {
	return EntryRef{Account: id, Block: fmt.Sprintf("block-%s-%d", id, seq), Seq: seq, Time: int64(seq) * 1000}
}

// claim adds a record entry by author about subject in author's block seq,
// with keys for author, subject and cc.
func (x *facts) claim(author, subject protocol.AccountID, seq uint64, cc ...protocol.AccountID) *facts {
	r := ref(author, seq)
	x.f.Claims = append(x.f.Claims, claimFact{Author: author, Subject: subject, Entry: r})
	seen := map[protocol.AccountID]bool{}
	for _, to := range append([]protocol.AccountID{author, subject}, cc...) {
		if !seen[to] {
			seen[to] = true
			x.f.Keys = append(x.f.Keys, keyFact{To: to, Key: []byte("k"), Via: r})
		}
	}
	return x
}

func (x *facts) grant(by, to protocol.AccountID, seq uint64, expires int64) *facts {
	x.f.Keys = append(x.f.Keys, keyFact{To: to, Key: []byte("k"), Via: ref(by, seq), Grant: true, Expires: expires})
	return x
}

func (x *facts) revoke(by, from protocol.AccountID, seq uint64) *facts {
	x.f.Revokes = append(x.f.Revokes, revokeFact{From: from, Via: ref(by, seq)})
	return x
}

// ack adds subject's ack (in its block seq) of the claim author wrote in
// block claimSeq.
func (x *facts) ack(subject, author protocol.AccountID, seq, claimSeq uint64) *facts {
	x.f.Acks = append(x.f.Acks, ackFact{Via: ref(subject, seq), Author: author, Block: ref(author, claimSeq).Block})
	return x
}

// scoped adds a key for to under scope, given by by in its block seq
// (entry 1: an author's goes beside its record entry).
func (x *facts) scoped(by, to protocol.AccountID, seq uint64, scope string) *facts {
	r := ref(by, seq)
	r.Index = 1
	x.f.Keys = append(x.f.Keys, keyFact{To: to, Key: []byte("k"), Via: r, Grant: true, Scope: scope})
	return x
}

// scope adds subject's standing grant of scope to to in its block seq
// (expires 0: none); unscope its end.
func (x *facts) scope(subject, to protocol.AccountID, seq uint64, scope string, expires int64) *facts {
	return x.scopeEvent(subject, scopeEvent{To: to, Scope: scope, Expires: expires, Via: ref(subject, seq)})
}

func (x *facts) unscope(subject, to protocol.AccountID, seq uint64, scope string) *facts {
	return x.scopeEvent(subject, scopeEvent{To: to, Scope: scope, End: true, Via: ref(subject, seq)})
}

func (x *facts) scopeEvent(subject protocol.AccountID, ev scopeEvent) *facts {
	if x.f.scopes == nil {
		x.f.scopes = map[protocol.AccountID][]scopeEvent{}
	}
	x.f.scopes[subject] = append(x.f.scopes[subject], ev)
	return x
}

func (x *facts) hide(subject protocol.AccountID, seq uint64, hidden bool) *facts {
	x.f.Hides = append(x.f.Hides, hideFact{Hidden: hidden, Via: ref(subject, seq)})
	return x
}

func (x *facts) eval() []*Access {
	f := x.f
	sortFacts(&f)
	return evaluate(recA, &f, tNow)
}

func newFacts() *facts { return &facts{} }

// claimBy returns the claim of as written by author.
func claimBy(t *testing.T, as []*Access, author protocol.AccountID) *Access {
	for _, a := range as {
		if a.Author == author {
			return a
		}
	}
	t.Fatalf("no claim by %s", author)
	return nil
}

func vouch(ids ...protocol.AccountID) vouchSet {
	v := vouchSet{}
	for _, id := range ids {
		v[id] = vouchLocal
	}
	return v
}

func actingFor(ids ...protocol.AccountID) peerRoles { return peerRoles{acting: ids} }

func replicaOf(ids ...protocol.AccountID) peerRoles { return peerRoles{replicating: ids} }

func set(ids ...protocol.AccountID) map[protocol.AccountID]bool {
	m := map[protocol.AccountID]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// policyCase is one rule: decides is a situation the rule decides (the
// decision carries the rule), flips the nearest situation where the
// answer is the other one.
type policyCase struct {
	rule    Rule
	allow   bool // the rule's own answer
	decides func(t *testing.T) Decision
	flips   func(t *testing.T) Decision
}

func policyTable() []policyCase {
	own := func() []*Access { return newFacts().claim(pat, pat, 1).eval() }
	// doc wrote a record about pat, which pat acknowledged (or not).
	docAbout := func(acked bool) []*Access {
		x := newFacts().claim(doc, pat, 1)
		if acked {
			x.ack(pat, doc, 2, 1)
		}
		return x.eval()
	}
	// mal claims pat's record, backdated, about pat, naming gp a reader.
	forged := func() []*Access {
		return newFacts().claim(pat, pat, 5).grant(pat, gp, 6, 0).claim(mal, pat, 1, gp).eval()
	}
	read := func(as []*Access, id protocol.AccountID) Decision { return readDecision(as[0], id) }
	// doc wrote a lab result about pat, acknowledged, with a key for gp
	// under the laboratory scope; pat's chain holds what more says.
	const lab, vitals = "patient/Observation.rs?category=laboratory", "patient/Observation.rs?category=vital-signs"
	labByDoc := func(more func(*facts)) []*Access {
		x := newFacts().claim(doc, pat, 1).scoped(doc, gp, 1, lab).ack(pat, doc, 2, 1)
		more(x)
		return x.eval()
	}
	labScope := []scopeEvent{{To: gp, Scope: lab, Via: ref(pat, 2)}}
	return []policyCase{
		{RuleReadAuthor, true,
			func(t *testing.T) Decision { return read(docAbout(false), doc) },
			func(t *testing.T) Decision { return read(docAbout(false), gp) }},
		{RuleReadSubject, true,
			func(t *testing.T) Decision { return read(docAbout(false), pat) },
			func(t *testing.T) Decision { return read(docAbout(false), mal) }},
		{RuleReadGrantee, true,
			func(t *testing.T) Decision {
				return read(newFacts().claim(pat, pat, 1).grant(pat, doc, 2, later).eval(), doc)
			},
			func(t *testing.T) Decision {
				// a grant by someone other than the subject gives nothing
				return read(newFacts().claim(pat, pat, 1).grant(mal, doc, 2, 0).eval(), doc)
			}},
		{RuleReadRevoked, false,
			func(t *testing.T) Decision {
				return read(newFacts().claim(pat, pat, 1).grant(pat, doc, 2, 0).revoke(pat, doc, 3).eval(), doc)
			},
			func(t *testing.T) Decision {
				// granted again after the revocation
				return read(newFacts().claim(pat, pat, 1).grant(pat, doc, 2, 0).revoke(pat, doc, 3).grant(pat, doc, 4, 0).eval(), doc)
			}},
		{RuleReadExpired, false,
			func(t *testing.T) Decision {
				return read(newFacts().claim(pat, pat, 1).grant(pat, doc, 2, tNow.UnixMilli()).eval(), doc)
			},
			func(t *testing.T) Decision {
				return read(newFacts().claim(pat, pat, 1).grant(pat, doc, 2, tNow.UnixMilli()+1).eval(), doc)
			}},
		{RuleReadNone, false,
			func(t *testing.T) Decision { return read(own(), doc) },
			func(t *testing.T) Decision { return read(own(), pat) }},
		{RuleReadUnknown, false,
			func(t *testing.T) Decision { return read(newFacts().grant(pat, doc, 2, 0).eval(), doc) },
			func(t *testing.T) Decision {
				return read(newFacts().claim(pat, pat, 1).grant(pat, doc, 2, 0).eval(), doc)
			}},

		{RuleClaimVouched, true,
			func(t *testing.T) Decision { return claimCounts(claimBy(t, forged(), pat), true, vouch(pat)) },
			func(t *testing.T) Decision {
				// the forged claim names pat, but pat never acknowledged it
				return claimCounts(claimBy(t, forged(), mal), true, vouch(pat))
			}},
		{RuleClaimProven, true,
			func(t *testing.T) Decision { return claimCounts(docAbout(true)[0], false, vouch()) },
			func(t *testing.T) Decision { return claimCounts(docAbout(false)[0], false, vouch()) }},
		{RuleClaimPending, false,
			func(t *testing.T) Decision { return claimCounts(docAbout(false)[0], false, vouch(pat)) },
			func(t *testing.T) Decision { return claimCounts(docAbout(true)[0], false, vouch(pat)) }},
		{RuleClaimContested, false,
			func(t *testing.T) Decision {
				as := newFacts().claim(pat, pat, 5).claim(mal, mal, 1).eval()
				return claimCounts(claimBy(t, as, mal), true, vouch(gp))
			},
			func(t *testing.T) Decision {
				as := newFacts().claim(pat, pat, 5).claim(mal, mal, 1).eval()
				return claimCounts(claimBy(t, as, pat), true, vouch(pat))
			}},
		{RuleClaimNone, false,
			func(t *testing.T) Decision { return claimCounts(newFacts().eval()[0], false, vouch(pat)) },
			func(t *testing.T) Decision { return claimCounts(own()[0], false, vouch(pat)) }},

		{RulePeerUnknown, false,
			func(t *testing.T) Decision { return serveRecordBlock(peerRoles{}, own(), true, vouch(pat)) },
			func(t *testing.T) Decision { return serveRecordBlock(actingFor(pat), own(), true, vouch(pat)) }},
		{RuleBlockNotHeld, false,
			func(t *testing.T) Decision { return serveRecordBlock(actingFor(pat), own(), false, vouch(pat)) },
			func(t *testing.T) Decision { return serveRecordBlock(actingFor(pat), own(), true, vouch(pat)) }},
		{RuleServeReader, true,
			func(t *testing.T) Decision { return serveRecordBlock(actingFor(gp), forged(), true, vouch(pat)) },
			func(t *testing.T) Decision {
				// mal, the forged claim's author, gets nothing
				return serveRecordBlock(actingFor(mal), forged(), true, vouch(pat))
			}},
		{RuleServeReplica, true,
			func(t *testing.T) Decision { return serveRecordBlock(replicaOf(pat), forged(), true, vouch(pat)) },
			func(t *testing.T) Decision { return serveRecordBlock(replicaOf(mal), forged(), true, vouch(pat)) }},
		{RuleServeNoClaim, false,
			func(t *testing.T) Decision {
				// on pat's node, doc's unacknowledged claim gives doc's
				// device nothing, though doc wrote it
				return serveRecordBlock(actingFor(doc), docAbout(false), true, vouch(pat))
			},
			func(t *testing.T) Decision {
				// on doc's own node it counts
				return serveRecordBlock(actingFor(pat), docAbout(false), true, vouch(doc))
			}},
		{RuleServeNoReader, false,
			func(t *testing.T) Decision { return serveRecordBlock(actingFor(doc), own(), true, vouch(pat)) },
			func(t *testing.T) Decision {
				return serveRecordBlock(actingFor(doc), newFacts().claim(pat, pat, 1).grant(pat, doc, 2, 0).eval(), true, vouch(pat))
			}},
		{RuleBlockUnknown, false,
			func(t *testing.T) Decision {
				return refuse(RuleBlockUnknown, "decided in MayServe: the block index knows nothing of it")
			},
			func(t *testing.T) Decision { return serveRecordBlock(actingFor(pat), own(), true, vouch(pat)) }},

		{RuleChainOwn, true,
			func(t *testing.T) Decision { return serveChainBlock(actingFor(pat), pat, nil, vouch(pat)) },
			func(t *testing.T) Decision { return serveChainBlock(actingFor(mal), pat, nil, vouch(pat)) }},
		{RuleChainReplica, true,
			func(t *testing.T) Decision { return serveChainBlock(replicaOf(pat), pat, nil, vouch(pat)) },
			func(t *testing.T) Decision { return serveChainBlock(replicaOf(doc), pat, nil, vouch(pat)) }},
		{RuleChainShared, true,
			func(t *testing.T) Decision {
				as := newFacts().claim(pat, pat, 1).grant(pat, doc, 2, 0).eval()
				return serveChainBlock(actingFor(doc), pat, map[protocol.AccountID][]*Access{doc: as}, vouch(pat))
			},
			func(t *testing.T) Decision {
				// writing a record about pat does not open pat's chain to
				// its writer until pat acknowledges it
				return serveChainBlock(actingFor(mal), pat, map[protocol.AccountID][]*Access{mal: forged()}, vouch(pat))
			}},
		{RuleChainNotShared, false,
			func(t *testing.T) Decision {
				// keys mal wrapped at creation for gp do not open pat's chain to gp
				as := newFacts().claim(mal, pat, 1, gp).eval()
				return serveChainBlock(actingFor(gp), pat, map[protocol.AccountID][]*Access{gp: as}, vouch(pat))
			},
			func(t *testing.T) Decision {
				as := newFacts().claim(doc, pat, 1).ack(pat, doc, 2, 1).eval()
				return serveChainBlock(actingFor(doc), pat, map[protocol.AccountID][]*Access{doc: as}, vouch(pat))
			}},

		{RuleProfilePublic, true,
			func(t *testing.T) Decision { return serveProfile(true, false, false) },
			func(t *testing.T) Decision { return serveProfile(false, false, false) }},
		{RuleProfileOwnNode, true,
			func(t *testing.T) Decision { return serveProfile(false, true, false) },
			func(t *testing.T) Decision { return serveProfile(false, false, false) }},
		{RuleProfileChain, true,
			func(t *testing.T) Decision { return serveProfile(false, false, true) },
			func(t *testing.T) Decision { return serveProfile(false, false, false) }},
		{RuleProfileRefused, false,
			func(t *testing.T) Decision { return serveProfile(false, false, false) },
			func(t *testing.T) Decision { return serveProfile(false, true, false) }},

		{RuleWantReader, true,
			func(t *testing.T) Decision {
				return wantRecord(newFacts().claim(pat, pat, 1).grant(pat, doc, 2, 0).eval(), doc, true, false, vouch(doc), pendingFacts{})
			},
			func(t *testing.T) Decision {
				return wantRecord(newFacts().claim(pat, pat, 1).grant(pat, doc, 2, 0).revoke(pat, doc, 3).eval(), doc, true, false, vouch(doc), pendingFacts{})
			}},
		{RuleWantReplica, true,
			func(t *testing.T) Decision { return wantRecord(own(), pat, false, true, vouch(pat), pendingFacts{}) },
			func(t *testing.T) Decision {
				// a replica of pat does not fetch doc's record about pat
				// before pat acknowledges it
				return wantRecord(docAbout(false), pat, false, true, vouch(pat), pendingFacts{})
			}},
		{RuleWantPending, true,
			func(t *testing.T) Decision {
				// pat's node fetches doc's record about her, not
				// acknowledged yet, because doc is her contact
				return wantRecord(docAbout(false), pat, true, false, vouch(pat), pendingFacts{contacts: set(doc)})
			},
			func(t *testing.T) Decision {
				// the same claim by an account pat merely knows (its
				// chain came with chain sync) fetches nothing
				return wantRecord(docAbout(false), pat, true, false, vouch(pat), pendingFacts{contacts: set()})
			}},
		{RuleWantPendingCap, false,
			func(t *testing.T) Decision {
				return wantRecord(docAbout(false), pat, true, false, vouch(pat), pendingFacts{contacts: set(doc), earlier: MaxPendingFetch})
			},
			func(t *testing.T) Decision {
				return wantRecord(docAbout(false), pat, true, false, vouch(pat), pendingFacts{contacts: set(doc), earlier: MaxPendingFetch - 1})
			}},
		{RuleWantNone, false,
			func(t *testing.T) Decision {
				// gp, named a reader only by mal's claim on pat's record,
				// does not fetch it on the strength of that claim
				return wantRecord(newFacts().claim(pat, pat, 5).claim(mal, mal, 1, gp).eval(), gp, true, false, vouch(gp), pendingFacts{})
			},
			func(t *testing.T) Decision {
				return wantRecord(newFacts().claim(pat, pat, 5).grant(pat, gp, 6, 0).eval(), gp, true, false, vouch(gp), pendingFacts{})
			}},

		{RuleKeepNeeded, true,
			func(t *testing.T) Decision {
				return keepRecord(newFacts().claim(pat, pat, 1).grant(pat, doc, 2, 0).eval(), set(doc), set(), vouch(doc))
			},
			func(t *testing.T) Decision {
				return keepRecord(newFacts().claim(pat, pat, 1).grant(pat, doc, 2, 0).revoke(pat, doc, 3).eval(), set(doc), set(), vouch(doc))
			}},
		{RuleDropRevoked, false,
			func(t *testing.T) Decision {
				// mal's claim naming doc does not keep a revoked record on doc's node
				x := newFacts().claim(pat, pat, 5).grant(pat, doc, 6, 0).revoke(pat, doc, 7).claim(mal, mal, 1, doc)
				return keepRecord(x.eval(), set(doc), set(), vouch(doc))
			},
			func(t *testing.T) Decision {
				x := newFacts().claim(pat, pat, 1).grant(pat, doc, 2, 0).revoke(pat, doc, 3)
				return keepRecord(x.eval(), set(doc), set(pat), vouch(doc, pat))
			}},
		{RuleKeepNotReceived, true,
			func(t *testing.T) Decision { return keepRecord(own(), set(gp), set(), vouch(gp)) },
			func(t *testing.T) Decision {
				return keepRecord(newFacts().claim(pat, pat, 1).grant(pat, gp, 2, tNow.UnixMilli()).eval(), set(gp), set(), vouch(gp))
			}},

		{RuleExportReadable, true,
			func(t *testing.T) Decision { return exportRecord(forged(), gp, vouch(pat)) },
			func(t *testing.T) Decision { return exportRecord(forged(), mal, vouch(pat)) }},
		{RuleExportWithheld, false,
			func(t *testing.T) Decision { return exportRecord(own(), doc, vouch(pat)) },
			func(t *testing.T) Decision { return exportRecord(own(), pat, vouch(pat)) }},

		{RuleChangeSubject, true,
			func(t *testing.T) Decision { return changeRecord(docAbout(true)[0], pat, "grant") },
			func(t *testing.T) Decision { return changeRecord(docAbout(true)[0], doc, "grant") }},
		{RuleChangeNotSubj, false,
			func(t *testing.T) Decision { return changeRecord(claimBy(t, forged(), mal), mal, "revoke") },
			func(t *testing.T) Decision { return changeRecord(claimBy(t, forged(), pat), pat, "revoke") }},

		{RuleReadScope, true,
			func(t *testing.T) Decision { return read(labByDoc(func(x *facts) { x.scope(pat, gp, 3, lab, 0) }), gp) },
			func(t *testing.T) Decision {
				// pat gave gp the vital-signs scope, not the one the key cites
				return read(labByDoc(func(x *facts) { x.scope(pat, gp, 3, vitals, 0) }), gp)
			}},
		{RuleReadScopeEnded, false,
			func(t *testing.T) Decision {
				return read(labByDoc(func(x *facts) { x.scope(pat, gp, 3, lab, 0).unscope(pat, gp, 4, lab) }), gp)
			},
			func(t *testing.T) Decision {
				// granted again: the same keys count again
				return read(labByDoc(func(x *facts) { x.scope(pat, gp, 3, lab, 0).unscope(pat, gp, 4, lab).scope(pat, gp, 5, lab, 0) }), gp)
			}},
		{RuleReadScopeExpired, false,
			func(t *testing.T) Decision {
				return read(labByDoc(func(x *facts) { x.scope(pat, gp, 3, lab, tNow.UnixMilli()) }), gp)
			},
			func(t *testing.T) Decision {
				return read(labByDoc(func(x *facts) { x.scope(pat, gp, 3, lab, tNow.UnixMilli()+1) }), gp)
			}},
		{RuleReadScopeHidden, false,
			func(t *testing.T) Decision {
				return read(labByDoc(func(x *facts) { x.scope(pat, gp, 3, lab, 0).hide(pat, 4, true) }), gp)
			},
			func(t *testing.T) Decision {
				return read(labByDoc(func(x *facts) { x.scope(pat, gp, 3, lab, 0).hide(pat, 4, true).hide(pat, 5, false) }), gp)
			}},
		{RuleReadScopeUnknown, false,
			func(t *testing.T) Decision {
				// the key cites a scope pat never gave gp; mal gave gp that
				// scope over mal's own records, which is no grant of pat's
				return read(labByDoc(func(x *facts) { x.scope(mal, gp, 3, lab, 0) }), gp)
			},
			func(t *testing.T) Decision { return read(labByDoc(func(x *facts) { x.scope(pat, gp, 3, lab, 0) }), gp) }},
		{RuleChainScope, true,
			func(t *testing.T) Decision { return serveChain(actingFor(gp), pat, nil, labScope, vouch(pat)) },
			func(t *testing.T) Decision {
				// pat's scope for gp does not open pat's chain to doc
				return serveChain(actingFor(doc), pat, nil, labScope, vouch(pat))
			}},
		{RuleCoverScope, true,
			func(t *testing.T) Decision { return coverRecord(own()[0], pat, gp, lab, labScope, true, tNow) },
			func(t *testing.T) Decision {
				// the record is not in the scope (its envelope says so)
				return coverRecord(own()[0], pat, gp, lab, labScope, false, tNow)
			}},
		{RuleCoverNot, false,
			func(t *testing.T) Decision {
				hidden := newFacts().claim(pat, pat, 1).hide(pat, 3, true).eval()[0]
				return coverRecord(hidden, pat, gp, lab, labScope, true, tNow)
			},
			func(t *testing.T) Decision {
				shown := newFacts().claim(pat, pat, 1).hide(pat, 3, true).hide(pat, 4, false).eval()[0]
				return coverRecord(shown, pat, gp, lab, labScope, true, tNow)
			}},
		{RuleVersionOf, true,
			func(t *testing.T) Decision { return versionOf(newVersion(doc, true), docAbout(true)[0]) },
			func(t *testing.T) Decision { return versionOf(newVersion(doc, false), docAbout(true)[0]) }},
		{RuleVersionApart, false,
			func(t *testing.T) Decision { return versionOf(newVersion(mal, true), docAbout(true)[0]) },
			func(t *testing.T) Decision { return versionOf(newVersion(pat, true), docAbout(true)[0]) }},
	}
}

// newVersion is a record by author about pat that supersedes recA,
// acknowledged by pat or not.
func newVersion(author protocol.AccountID, acked bool) *Access {
	x := newFacts().claim(author, pat, 3)
	if acked && author != pat {
		x.ack(pat, author, 4, 3)
	}
	a := x.eval()[0]
	a.Record, a.Supersedes = testCID("record B"), recA.String()
	return a
}

func TestPolicyTable(t *testing.T) {
	covered := map[Rule]bool{}
	for _, tc := range slices.Concat(policyTable(), rekeyPolicyCases(), attestPolicyCases(), auditPolicyCases(), emergencyPolicyCases(), guardianPolicyCases(), recoveryPolicyCases(), pairPolicyCases(), messagePolicyCases(), answerPolicyCases(), handoverPolicyCases(), rekeyScopePolicyCases(), addrbookPolicyCases(), recoveryExportPolicyCases(), forkRecoveryPolicyCases(), consentPolicyCases(), forkReplayPolicyCases(), atkconsentPolicyCases()) {
		t.Run(string(tc.rule), func(t *testing.T) {
			covered[tc.rule] = true
			d := tc.decides(t)
			if d.Rule != tc.rule || d.Allow != tc.allow {
				t.Fatalf("decides: got %+v, want rule %s allow=%v", d, tc.rule, tc.allow)
			}
			if d.Reason == "" {
				t.Fatal("decision without a reason")
			}
			if f := tc.flips(t); f.Allow == tc.allow {
				t.Fatalf("flips: got %+v, want allow=%v", f, !tc.allow)
			}
		})
	}
	for _, r := range rulesDeclared(t) {
		if !covered[r] {
			t.Errorf("rule %s is declared in policy.go but not in the table", r)
		}
	}
}

// rulesDeclared reads the Rule constants from policy.go, so a rule added
// there without a row here fails the test.
func rulesDeclared(t *testing.T) []Rule {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "policy.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []Rule
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Rule" {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					t.Fatalf("rule constant %v is not a string literal", v)
				}
				s, _ := strconv.Unquote(lit.Value)
				out = append(out, Rule(s))
			}
		}
	}
	if len(out) < 30 {
		t.Fatalf("found only %d rules in policy.go", len(out))
	}
	return out
}

// A view (what an account reads, and under which author and title) puts
// the account's own and acknowledged claims before anything a stranger
// wrote about it, whatever the dates.
func TestViewOrder(t *testing.T) {
	as := newFacts().claim(pat, pat, 5).grant(pat, gp, 6, 0).claim(mal, pat, 1, gp).claim(doc, pat, 2).ack(pat, doc, 7, 2).eval()
	view := viewOrder(as, pat, vouch(pat))
	if len(view) != 3 || view[0].Author != pat || view[1].Author != doc || view[2].Author != mal {
		t.Fatalf("pat's view: %v", authors(view))
	}
	// gp's view: pat's grant applies under every claim about pat; the
	// proven claims (pat's own, doc's acknowledged) come before mal's
	// pending one, whatever its date.
	view = viewOrder(as, gp, vouch(gp))
	if len(view) != 3 || view[2].Author != mal {
		t.Fatalf("gp's view: %v", authors(view))
	}
	if v := viewOrder(as, testAccount(9), vouch()); len(v) != 0 {
		t.Fatalf("a stranger's view holds %v", authors(v))
	}
}

func authors(as []*Access) []protocol.AccountID {
	var out []protocol.AccountID
	for _, a := range as {
		out = append(out, a.Author)
	}
	return out
}
