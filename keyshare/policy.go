package keyshare

// The access policy. Every decision about who may decrypt a record, under
// which claim an account sees a record, which blocks a peer is served,
// which peers' addresses the node keeps, whose profile is given out,
// which records a node fetches, keeps or exports for an account, and
// who may grant, revoke or hide is made in this file, by pure functions
// over verified facts, the asking peer's declared accounts, the accounts
// this node vouches for and the time. Each returns a Decision naming the
// Rule that made it. Repo methods only load
// the facts and call these functions; policy_test.go lists every rule with
// a case it permits and a case it refuses. A rule added later (standing
// grants, guardians, attestations, emergency access) is added here and to
// that table, nowhere else.
//
// Claims (PROTOCOL.md §6). Anyone who learns a CID can sign a record
// entry claiming it, about any subject. A claim therefore counts only as
// far as it is proven:
//
//   - its proof is "own" when its author is its subject, "acknowledged"
//     when its subject acknowledged exactly this claim (an ack naming its
//     author and block, written only after the subject's node opened the
//     record with the key wrapped for her), else "pending";
//   - a CID (or a block) with more than one claim is contested;
//   - on a node, a claim counts (for serving, fetching, keeping, exports
//     and grants) when the node vouches for it — its author is an account
//     the node holds keys for or replicates, or its subject is and the
//     claim is proven — or when it is proven and uncontested. A pending
//     claim by someone else, or a contested claim nobody here vouches for,
//     gives nobody anything from this node;
//   - one thing a claim that does not count does: a pending claim about a
//     local account by a contact of this repo (an account its user added)
//     makes the node fetch the record, so that her key can check it and
//     she can acknowledge it. Fetching grants nothing: the claim stays
//     pending, and counts for nothing, until she does (RuleWantPending,
//     bounded by MaxPendingFetch per author);
//   - an account's own view of a record (what it reads and sees as author
//     and title) prefers the claims it made or acknowledged, then claims
//     that count, and among those the first whose wrapped key opens the
//     record and whose envelope agrees with the claim (checked with the
//     account's key, see Repo.RecordKey). A claim naming the account as
//     subject that it has not acknowledged comes last: it is shown only
//     when nothing better exists, as a record to check.
//
// Whether a claim is proven or contested depends on the chains alone, so
// every node holding the same chains agrees on it; what a node vouches for
// depends on whose node it is.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/protocol"
)

// Rule names the rule of the access policy that made a decision.
type Rule string

// The rules. Each is listed, with a case it permits or refuses, in
// policy_test.go.
const (
	// Reading (decrypting) a record under one claim.
	RuleReadAuthor  Rule = "read/author"  // the claim's author reads under it
	RuleReadSubject Rule = "read/subject" // the claim's subject reads under it
	RuleReadGrantee Rule = "read/grantee" // a live grant on the subject's chain, or a key the author wrapped at creation
	RuleReadRevoked Rule = "read/revoked" // the subject revoked the account's access
	RuleReadExpired Rule = "read/expired" // the account's grant expired
	RuleReadNone    Rule = "read/none"    // no key for the account under this claim
	RuleReadUnknown Rule = "read/unknown" // no verified record entry claims the CID

	// Whether a claim counts on this node.
	RuleClaimVouched   Rule = "claim/vouched"   // its author, or its proven subject, is an account this node vouches for
	RuleClaimProven    Rule = "claim/proven"    // own or acknowledged, and the only claim on the block
	RuleClaimPending   Rule = "claim/pending"   // another account's claim the subject has not acknowledged
	RuleClaimContested Rule = "claim/contested" // one of several claims on the block, and this node vouches for none of its parties
	RuleClaimNone      Rule = "claim/none"      // not a claim (no record entry)

	// Which peers' addresses the node keeps (its address book).
	RuleAddrsKept    Rule = "addrs/kept"    // the peer is a declared device or replica of an account this repo knows
	RuleAddrsUnknown Rule = "addrs/unknown" // the peer acts for no account this repo knows: where it listens is not kept
	RuleAddrsCrowded Rule = "addrs/crowded" // a peer not kept yet whose every declaring account has MaxKeptPeersPerAccount peers kept: not kept (one chain declaring many nodes cannot push the others out)

	// Serving a block to a peer.
	RulePeerUnknown     Rule = "serve/peer-unknown"       // the peer is no declared device or replica of any account
	RuleBlockUnknown    Rule = "serve/block-unknown"      // the block is in no chain or record this repo knows
	RuleBlockNotHeld    Rule = "serve/block-not-held"     // a record block this node does not hold (no want is left pending)
	RuleServeReader     Rule = "serve/reader"             // a record block, to a device of an account that may read the record under a claim that counts
	RuleServeReplica    Rule = "serve/replica"            // a record block, to a declared replica of the author or subject of a claim that counts
	RuleServeNoClaim    Rule = "serve/no-claim-counts"    // a record block none of whose claims counts here
	RuleServeNoReader   Rule = "serve/no-reader"          // no account of the peer may read the record now
	RuleChainOwn        Rule = "serve/chain-own"          // a chain block, to a device of the chain's account
	RuleChainReplica    Rule = "serve/chain-replica"      // a chain block, to a declared replica of the chain's account
	RuleChainShared     Rule = "serve/chain-shared"       // a chain block, to a device of an account the chain's account shares a record with
	RuleChainNotShared  Rule = "serve/chain-not-shared"   // a chain block of an account that shares no record with the peer's accounts
	RuleProfilePublic   Rule = "profile/public"           // the profile of an account of this repo: public by design
	RuleProfileOwnNode  Rule = "profile/own-node"         // a contact's profile, to a declared node of an account of this repo
	RuleProfileChain    Rule = "profile/chain-entitled"   // a contact's profile, to a peer entitled to the contact's chain (serveChain): the first block of what it may have whole
	RuleProfileRefused  Rule = "profile/refused"          // a contact's profile, to anyone else
	RuleWantReader      Rule = "want/reader"              // fetch a record an account of this repo may read
	RuleWantReplica     Rule = "want/replica"             // fetch a record of an account this node replicates
	RuleWantPending     Rule = "want/pending"             // fetch, for a local account to check and acknowledge, a record a contact wrote about it with a key for it
	RuleWantPendingCap  Rule = "want/pending-cap"         // not while MaxPendingFetch earlier pending records of that author about the account come first
	RuleWantUnaccepted  Rule = "want/guardian-unaccepted" // not a ward's record read under an appointment's read right its guardian has not accepted
	RuleWantNone        Rule = "want/none"                // the record is for nobody here
	RuleKeepNeeded      Rule = "keep/needed"              // keep a record someone here may read, wrote, owns or replicates
	RuleDropRevoked     Rule = "keep/drop-revoked"        // drop a record every local reader of which was revoked or expired
	RuleKeepNotReceived Rule = "keep/not-received"        // keep a record not received for a local reader (nothing to drop)
	RuleExportReadable  Rule = "export/readable"          // an export for an account holds a record it may read
	RuleExportWithheld  Rule = "export/withheld"          // and leaves out every other record
	RuleChangeSubject   Rule = "change/subject"           // the subject of a claim that counts may grant, revoke and hide
	RuleChangeNotSubj   Rule = "change/not-subject"       // nobody else may

	// Standing grants (scopes on the subject's chain; see applyScoped).
	RuleReadScope        Rule = "read/scope"         // a key given under a standing grant the subject's chain holds, live, for the account
	RuleReadScopeEnded   Rule = "read/scope-ended"   // the subject ended the standing grant the account's key was given under
	RuleReadScopeExpired Rule = "read/scope-expired" // that standing grant expired
	RuleReadScopeHidden  Rule = "read/scope-hidden"  // the subject hid the record: standing grants do not cover hidden records
	RuleReadScopeUnknown Rule = "read/scope-unknown" // the key cites a standing grant the subject never gave the account: it counts for nothing
	RuleChainScope       Rule = "serve/chain-scope"  // a chain block, to a device of an account the chain's account gave a standing grant (live or ended)
	RuleCoverScope       Rule = "cover/scope"        // give an account a record's key under a live standing grant whose scope holds the record
	RuleCoverNot         Rule = "cover/not"          // not when the grant is not live, the record is out of its scope, hidden, revoked from the account, or read already
	// Showing one record as a newer version of another.
	RuleVersionOf    Rule = "version/of"    // a proven record about the same subject, by the older one's author or by the subject, that names it as superseded
	RuleVersionApart Rule = "version/apart" // anything else that names a record as superseded is listed on its own: it hides nothing

	// Re-keying (rekey entries, PROTOCOL.md §5.10).
	RuleRekeyBySubject  Rule = "rekey/by-subject"     // a rekey entry on the claim's subject's chain naming exactly this claim marks it re-keyed
	RuleRekeyNotSubject Rule = "rekey/not-subject"    // any other rekey entry (another chain, another claim) marks nothing
	RuleRekeyOrigin     Rule = "rekey/origin"         // an own record entry with a rekey entry in its block is the new version of the record it names
	RuleRekeyNoOrigin   Rule = "rekey/no-origin"      // a rekey entry elsewhere makes no record the new version of another
	RuleServeRekeyed    Rule = "serve/rekeyed"        // a block of a record its subject re-keyed is served to nobody, her own nodes and replicas included
	RuleWantRekeyed     Rule = "want/rekeyed"         // a record its subject re-keyed is not fetched (its new version is)
	RuleDropRekeyed     Rule = "keep/drop-rekeyed"    // drop a record its subject re-keyed once its new version is held here
	RuleKeepRekeyAwait  Rule = "keep/rekeyed-waiting" // keep it until then (served to nobody meanwhile)
	RuleExportRekeyed   Rule = "export/rekeyed"       // an export leaves out a record its subject re-keyed
	RuleRekeyScope      Rule = "rekey/scope"          // ending a standing grant with re-key re-keys each record of the subject's the grantee lost by that end
	RuleRekeyScopeNot   Rule = "rekey/scope-not"      // not another subject's record, nor one the grantee still reads (granted one by one, another live standing grant), nor one it never read under that grant

	// Guardians (guardian entries on the ward's chain, acts on the
	// guardian's; see guardianAct).
	RuleGuardianAct       Rule = "guardian/act"         // an act in a guardian's block inside its appointment's span, with the right, before until, counts as the ward's
	RuleGuardianNone      Rule = "guardian/none"        // an act by an account the ward never appointed counts for nothing
	RuleGuardianOtherWard Rule = "guardian/other-ward"  // an act naming another ward (or none) counts for nothing on this ward's records
	RuleGuardianEarly     Rule = "guardian/before-span" // an act in a block before the appointment's span (written before it)
	RuleGuardianRemoved   Rule = "guardian/removed"     // an act in a block at or after the position the ward's removal cuts at
	RuleGuardianRight     Rule = "guardian/no-right"    // an act the appointment does not give the right for
	RuleGuardianUntil     Rule = "guardian/after-until" // an act in a block whose time is at or after the appointment's until
	RuleReadGuardian      Rule = "read/guardian"        // a live grant made by a guardian of the subject, within its rights
	RuleChainGuardian     Rule = "serve/chain-guardian" // a chain block, to a device of the chain's account's guardian, or of a ward whose appointment the account accepted (or resigned after accepting)
	// Guardian consent (wardaccept and warddecline entries on the
	// guardian's chain; see guardianConsent). An appointment counts for
	// the guardian's acting, relaying and chain serving only once accepted.
	RuleGuardianAccepted    Rule = "guardian/accepted"     // the guardian's latest answer to the appointment is a wardaccept
	RuleGuardianCarried     Rule = "guardian/carried"      // a re-appointment with no more rights, no later end and no earlier start (From) than the accepted one it replaced keeps its acceptance
	RuleGuardianNotAccepted Rule = "guardian/not-accepted" // no answer yet: a pending offer, which counts for nothing on the guardian's side
	RuleGuardianWidened     Rule = "guardian/widened"      // a re-appointment with more rights, a later end or an earlier start (From) than the accepted one it replaced waits for a new accept
	RuleGuardianDeclined    Rule = "guardian/declined"     // the guardian's latest answer is a warddecline of an offer it never took
	RuleGuardianResigned    Rule = "guardian/resigned"     // the guardian's latest answer is a warddecline after it consented to the appointment: counts for nothing on its side as a decline does, but the ward's node is still served the guardian's chain, so that it learns of it
	// Pairing a device (node/pair; PROTOCOL.md, "Device pairing"): who is
	// given an account's keys.
	RulePairAccepted  Rule = "pair/accepted"          // a live, unused offer whose code's proof, bound to both peer IDs, matches
	RulePairNoOffer   Rule = "pair/no-offer"          // this node offers no pairing
	RulePairExpired   Rule = "pair/expired"           // the offer's time ran out
	RulePairSpent     Rule = "pair/spent"             // the offer was used, or too many wrong codes were tried against it
	RulePairWrongCode Rule = "pair/wrong-code"        // the proof does not match the offer's code and the two peer IDs
	RuleRotationsOwn  Rule = "pair/rotations-own"     // an account's rotation files, to a node its chain declares a device (not a replica)
	RuleRotationsNone Rule = "pair/rotations-refused" // to anyone else, or for an account not of this repo
)

// Rules of audit events other nodes report (node/audit, PROTOCOL.md §10.5).
const (
	RuleReportKept       Rule = "report/kept"       // a first-hand entry, signed by the node that sends it, about a local account, newer than what it sent before
	RuleReportUndeclared Rule = "report/undeclared" // the same from a node the subject's chain does not declare, within its quota
	RuleReportForged     Rule = "report/forged"     // signed by another node than the one that sends it
	RuleReportRelayed    Rule = "report/relayed"    // an entry that is itself a report: only first-hand entries travel
	RuleReportForeign    Rule = "report/foreign"    // about no account of this node
	RuleReportReplayed   Rule = "report/replayed"   // not newer than the sender's entries held here
	RuleReportOverQuota  Rule = "report/over-quota" // from an undeclared node past its quota
)

// reportFacts are what decides whether a reported audit entry is kept.
type reportFacts struct {
	signedBySender bool // the entry's node key is the sending peer's
	firstHand      bool // it holds no report itself
	subjectLocal   bool // its subject is an account of this repo
	newer          bool // its seq is above the sender's entries held here
	declared       bool // the subject's chain declares the sender as one of its nodes
	quotaLeft      bool // an undeclared sender has not used up its quota
}

// keepReport decides whether an audit entry another node reported is
// kept in this node's log.
func keepReport(f reportFacts) Decision {
	switch {
	case !f.signedBySender:
		return refuse(RuleReportForged, "the entry is signed by another node than the one that sent it")
	case !f.firstHand:
		return refuse(RuleReportRelayed, "the entry is a report of another node's entry")
	case !f.subjectLocal:
		return refuse(RuleReportForeign, "the entry is about no account of this node")
	case !f.newer:
		return refuse(RuleReportReplayed, "this node holds the sender's entry with that number or a later one")
	case f.declared:
		return allow(RuleReportKept, "reported by a node the subject's chain declares")
	case !f.quotaLeft:
		return refuse(RuleReportOverQuota, "too many entries from a node the subject's chain does not declare")
	}
	return allow(RuleReportUndeclared, "reported by a node the subject's chain does not declare (kept, marked as reported by it)")
}

// Decision is the policy's answer and the rule that gave it.
type Decision struct {
	Allow bool `json:"allow"`
	Rule  Rule `json:"rule"`
	// Reason says, for people, what the rule found.
	Reason string `json:"reason"`
}

func allow(rule Rule, format string, args ...any) Decision {
	return Decision{Allow: true, Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

func refuse(rule Rule, format string, args ...any) Decision {
	return Decision{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// Proof says how far a claim is proven.
type Proof string

// Proofs of a claim (see the file comment).
const (
	ProofOwn          Proof = "own"
	ProofAcknowledged Proof = "acknowledged"
	ProofPending      Proof = "pending"
)

// Reader is one account that may decrypt a record, and why.
type Reader struct {
	Account protocol.AccountID `json:"account"`
	// Role is "author", "subject" or "grantee".
	Role    string    `json:"role"`
	Via     EntryRef  `json:"via"`
	Expires time.Time `json:"expires,omitzero"`
	// Scope is the standing grant a grantee reads under (its key was
	// given under it), or lost the record with; "" for a grant of the
	// record itself. Expires is then the standing grant's end.
	Scope string `json:"scope,omitempty"`
	// Guardian is set when a guardian of the subject made the grant (or
	// the revocation) rather than the subject: who did it.
	Guardian protocol.AccountID `json:"guardian,omitempty"`
	key      []byte
	rule     Rule // for a reader lost under a scope: why (RuleReadScopeEnded, …)
}

// Access is the access state of one record under one claim, evaluated at
// one moment.
type Access struct {
	Record cid.Cid `json:"cid"`
	// Known is false when no verified chain holds the record's entry:
	// then nothing about it can be trusted and Readers is empty.
	Known      bool               `json:"known"`
	Author     protocol.AccountID `json:"author,omitempty"`
	Subject    protocol.AccountID `json:"subject,omitempty"`
	Created    time.Time          `json:"created,omitzero"` // time of the record entry's block
	Supersedes string             `json:"supersedes,omitempty"`
	Entry      *EntryRef          `json:"entry,omitempty"`
	Hidden     bool               `json:"hidden"`
	// Acked tells whether the subject acknowledged a record someone else
	// authored (always true when the subject is the author); Proof says
	// the same as own, acknowledged or pending.
	Acked bool  `json:"acked"`
	Proof Proof `json:"proof,omitempty"`
	// Contested tells whether another record entry claims the same CID.
	Contested bool     `json:"contested,omitempty"`
	Readers   []Reader `json:"readers"`
	// Revoked lists accounts whose grant the subject revoked, with the
	// revoking entry; Expired those whose grant expired.
	Revoked []Reader `json:"revoked,omitempty"`
	Expired []Reader `json:"expired,omitempty"`
	// Problems lists entries that claim something about the record and
	// were not honoured (a grant by someone other than the subject, …).
	Problems []string `json:"problems,omitempty"`
	// Rekeyed is set on a claim its subject re-keyed (RuleRekeyBySubject):
	// the new version that replaces it. Its blocks are served to nobody.
	Rekeyed *RekeyLink `json:"rekeyed,omitempty"`
	// RekeyOf is set on the new version a subject made when she re-keyed
	// a record (RuleRekeyOrigin): the record, and the claim, it re-keys.
	RekeyOf *RekeyLink `json:"rekey_of,omitempty"`

	meta []byte // the sealed envelope of this record entry
	// denied lists the accounts whose only keys cite a standing grant the
	// subject never gave them (RuleReadScopeUnknown).
	denied []Reader
}

// MarshalJSON writes the record CID as a plain string, like every other
// CID in the JSON this package produces.
func (a *Access) MarshalJSON() ([]byte, error) {
	type plain Access
	return json.Marshal(struct {
		Record string `json:"cid"`
		*plain
	}{a.Record.String(), (*plain)(a)})
}

// Reader returns id's reader entry and whether id may decrypt now.
func (a *Access) Reader(id protocol.AccountID) (Reader, bool) {
	for _, r := range a.Readers {
		if r.Account == id {
			return r, true
		}
	}
	return Reader{}, false
}

// proven tells whether the claim is its author's own record or its subject
// acknowledged it.
func (a *Access) proven() bool { return a.Known && a.Proof != ProofPending }

// readDecision says whether account id may decrypt the record under the
// claim a, and by which rule.
func readDecision(a *Access, id protocol.AccountID) Decision {
	if !a.Known {
		return refuse(RuleReadUnknown, "%s: no verified record entry claims it", a.Record)
	}
	if rd, ok := a.Reader(id); ok {
		switch rd.Role {
		case "author":
			return allow(RuleReadAuthor, "%s wrote the record entry %s", id, rd.Via)
		case "subject":
			return allow(RuleReadSubject, "%s is the subject of the record entry %s", id, a.Entry)
		}
		if rd.Guardian != "" {
			return allow(RuleReadGuardian, "%s holds a live grant made by %s, guardian of %s, %s", id, rd.Guardian, a.Subject, rd.Via)
		}
		if rd.Scope != "" {
			return allow(RuleReadScope, "%s holds a key under the live standing grant %s, %s", id, rd.Scope, rd.Via)
		}
		return allow(RuleReadGrantee, "%s holds a live grant, %s", id, rd.Via)
	}
	for _, rv := range a.Revoked {
		if rv.Account == id {
			if rv.Scope != "" {
				return refuse(rv.rule, "%s: standing grant %s, %s", rv.rule, rv.Scope, rv.Via)
			}
			return refuse(RuleReadRevoked, "access revoked by the subject at %s", rv.Via)
		}
	}
	for _, ex := range a.Expired {
		if ex.Account == id {
			if ex.Scope != "" {
				return refuse(RuleReadScopeExpired, "the standing grant %s expired at %s", ex.Scope, ex.Expires.Format(time.RFC3339))
			}
			return refuse(RuleReadExpired, "access expired at %s", ex.Expires.Format(time.RFC3339))
		}
	}
	for _, d := range a.denied {
		if d.Account == id {
			return refuse(RuleReadScopeUnknown, "the key for %s at %s cites the standing grant %s, which the subject never gave it", id, d.Via, d.Scope)
		}
	}
	return refuse(RuleReadNone, "%s has no key for the record", id)
}

// evaluate turns facts into access state at time now: one Access per
// record entry claiming the CID, in claim order. Each claim is judged on
// its own terms (its author's wrapped keys, its subject's grants), so a
// second, false claim on someone's record cannot take the real subject's
// readers away. Every evaluation of a contested CID is marked and reports
// the contest as a problem.
func evaluate(c cid.Cid, f *recordFacts, now time.Time) []*Access {
	if len(f.Claims) == 0 {
		a := &Access{Record: c, Readers: []Reader{}}
		if len(f.Keys) > 0 || len(f.Revokes) > 0 {
			a.Problems = append(a.Problems, "no verified record entry: grants cannot be checked")
		}
		return []*Access{a}
	}
	out := make([]*Access, len(f.Claims))
	for i := range f.Claims {
		out[i] = evaluateClaim(c, f, &f.Claims[i], now)
		for j, other := range f.Claims {
			if j != i {
				out[i].Contested = true
				out[i].Problems = append(out[i].Problems, fmt.Sprintf("contested: another record entry claims this CID: %s by %s about %s", other.Entry, other.Author, other.Subject))
			}
		}
	}
	return out
}

// evaluateClaim evaluates access under one record entry.
func evaluateClaim(c cid.Cid, f *recordFacts, cl *claimFact, now time.Time) *Access {
	a := &Access{Record: c, Readers: []Reader{}, meta: cl.Meta}
	entry := cl.Entry
	a.Known, a.Author, a.Subject, a.Entry = true, cl.Author, cl.Subject, &entry
	a.Created = time.UnixMilli(cl.Entry.Time).UTC()
	a.Supersedes = cl.Supersedes
	a.Acked, a.Proof = cl.Author == cl.Subject, ProofOwn
	if !a.Acked {
		a.Proof = ProofPending
		// An ack names an author and a block, not an entry: when the
		// block holds more than one claim of its author on this CID, an
		// ack cannot tell which one the subject's key opened, so it
		// acknowledges none of them.
		sameBlock := 0
		for j := range f.Claims {
			if f.Claims[j].Author == cl.Author && f.Claims[j].Entry.Block == cl.Entry.Block {
				sameBlock++
			}
		}
		for _, ack := range f.Acks {
			if sameBlock == 1 && ack.acknowledges(cl) {
				a.Acked, a.Proof = true, ProofAcknowledged
			}
		}
	}

	type event struct {
		ref    EntryRef
		at     int64 // the time it takes effect, to order acts of several chains (actBefore)
		grant  *keyFact
		revoke bool
		by     protocol.AccountID // the guardian who acted, "" for the subject
	}
	seen := map[protocol.AccountID]bool{}
	add := func(r Reader) {
		if !seen[r.Account] {
			seen[r.Account] = true
			a.Readers = append(a.Readers, r)
		}
	}
	// Keys from the record entry itself.
	for i := range f.Keys {
		k := &f.Keys[i]
		if k.Grant || k.Via != cl.Entry {
			continue
		}
		switch k.To {
		case cl.Author:
			add(Reader{Account: k.To, Role: "author", Via: k.Via, key: k.Key})
		case cl.Subject:
			add(Reader{Account: k.To, Role: "subject", Via: k.Via, key: k.Key})
		}
	}
	// Others the author shared with from the start count as grantees
	// whose grant precedes every entry of the subject's chain; then come
	// the subject's grants and revocations, in chain order.
	last := map[protocol.AccountID]event{}
	for i := range f.Keys {
		k := &f.Keys[i]
		if !k.Grant && k.Via == cl.Entry && k.To != cl.Author && k.To != cl.Subject {
			last[k.To] = event{grant: k}
		}
	}
	for i := range f.Keys {
		k := &f.Keys[i]
		if !k.Grant || k.Scope != "" {
			continue // keys under a standing grant: applyScoped
		}
		at, by := k.Via.Time, protocol.AccountID("")
		if k.Via.Account != cl.Subject {
			d, t := actFor(f, cl, k.Via, k.Ward, protocol.RightGrant, "grant")
			if !d.Allow {
				a.Problems = append(a.Problems, fmt.Sprintf("grant to %s by %s at %s ignored: %s", k.To, k.Via.Account, k.Via, d.Reason))
				continue
			}
			at, by = t, k.Via.Account
		}
		if e, ok := last[k.To]; !ok || e.ref == (EntryRef{}) || actBefore(e.ref, e.at, k.Via, at) {
			last[k.To] = event{ref: k.Via, at: at, grant: k, by: by}
		}
	}
	for _, rv := range f.Revokes {
		at, by := rv.Via.Time, protocol.AccountID("")
		if rv.Via.Account != cl.Subject {
			d, t := actFor(f, cl, rv.Via, rv.Ward, protocol.RightRevoke, "revoke")
			if !d.Allow {
				a.Problems = append(a.Problems, fmt.Sprintf("revocation of %s by %s at %s ignored: %s", rv.From, rv.Via.Account, rv.Via, d.Reason))
				continue
			}
			at, by = t, rv.Via.Account
		}
		if e, ok := last[rv.From]; !ok || e.ref == (EntryRef{}) || actBefore(e.ref, e.at, rv.Via, at) {
			last[rv.From] = event{ref: rv.Via, at: at, revoke: true, by: by}
		}
	}
	grantees := make([]protocol.AccountID, 0, len(last))
	for id := range last {
		grantees = append(grantees, id)
	}
	sort.Slice(grantees, func(i, j int) bool { return grantees[i] < grantees[j] })
	for _, id := range grantees {
		e := last[id]
		switch {
		case e.revoke:
			if id != cl.Subject && id != cl.Author {
				a.Revoked = append(a.Revoked, Reader{Account: id, Role: "grantee", Via: e.ref, Guardian: e.by})
			}
		case e.grant.Expires != 0 && !now.Before(time.UnixMilli(e.grant.Expires)):
			a.Expired = append(a.Expired, Reader{Account: id, Role: "grantee", Via: e.ref, Expires: time.UnixMilli(e.grant.Expires).UTC(), Guardian: e.by})
		default:
			r := Reader{Account: id, Role: "grantee", Via: e.grant.Via, key: e.grant.Key, Guardian: e.by}
			if e.grant.Expires != 0 {
				r.Expires = time.UnixMilli(e.grant.Expires).UTC()
			}
			add(r)
		}
	}
	for _, h := range f.Hides {
		if h.Via.Account != cl.Subject {
			a.Problems = append(a.Problems, fmt.Sprintf("hide by %s at %s ignored: only the subject may hide", h.Via.Account, h.Via))
			continue
		}
		a.Hidden = h.Hidden // facts are sorted in chain order
	}
	applyScoped(a, f, cl, now)
	applyRekeys(c, f, cl, a)
	return a
}

// applyRekeys sets a.Rekeyed and a.RekeyOf from the rekey entries naming
// record c, by rekeyMarks and rekeyOrigin, and reports as problems the
// rekey entries of accounts that are party to no claim on c.
func applyRekeys(c cid.Cid, f *recordFacts, cl *claimFact, a *Access) {
	party := func(id protocol.AccountID) bool {
		return slices.ContainsFunc(f.Claims, func(o claimFact) bool { return o.Author == id || o.Subject == id })
	}
	for i := range f.Rekeys {
		rk := &f.Rekeys[i]
		var d Decision
		switch c.String() {
		case rk.Record:
			if d = rekeyMarks(cl, rk); d.Allow && a.Rekeyed == nil {
				a.Rekeyed = rk.link()
			}
		case rk.New:
			if d = rekeyOrigin(cl, rk); d.Allow && a.RekeyOf == nil {
				a.RekeyOf = rk.link()
			}
		default:
			continue
		}
		if !d.Allow && !party(rk.Via.Account) {
			a.Problems = append(a.Problems, d.Reason)
		}
	}
}

// rekeyMarks decides whether rekey entry rk marks claim cl as re-keyed:
// only when it is on the chain of cl's subject and names exactly cl (its
// author and the block of its record entry), as an ack does. So nobody
// but the subject can stop her record being served, and her re-key of
// one claim on a contested CID says nothing of another.
func rekeyMarks(cl *claimFact, rk *rekeyFact) Decision {
	switch {
	case rk.Via.Account != cl.Subject:
		return refuse(RuleRekeyNotSubject, "re-key of %s by %s at %s ignored: only the record's subject (%s) may re-key it", rk.Record, rk.Via.Account, rk.Via, cl.Subject)
	case rk.Author != cl.Author || rk.Block != cl.Entry.Block:
		return refuse(RuleRekeyNotSubject, "re-key at %s names the claim of %s in block %s, not this one", rk.Via, rk.Author, rk.Block)
	}
	return allow(RuleRekeyBySubject, "%s, the record's subject, re-keyed it as %s at %s", cl.Subject, rk.New, rk.Via)
}

// rekeyOrigin decides whether claim cl is the new version made by rekey
// entry rk: cl is its author's own record (author = subject) and rk is in
// the same block of the same chain. Provenance is the subject's word; a
// reader of both versions can check it (Repo.Verify).
func rekeyOrigin(cl *claimFact, rk *rekeyFact) Decision {
	if rk.Via.Account != cl.Author || cl.Author != cl.Subject || rk.Via.Block != cl.Entry.Block {
		return refuse(RuleRekeyNoOrigin, "re-key entry %s by %s naming %s as a new version ignored: it is not in the block of that record's own entry", rk.Via, rk.Via.Account, rk.New)
	}
	return allow(RuleRekeyOrigin, "%s re-keyed %s (written by %s) as this record at %s", cl.Author, rk.Record, rk.Author, rk.Via)
}

// rekeyedAmong returns the first claim in as that its subject re-keyed.
func rekeyedAmong(as []*Access) *Access {
	for _, a := range as {
		if a.Rekeyed != nil {
			return a
		}
	}
	return nil
}

// vouchSet is the accounts a node vouches for: those it holds keys for
// (local) and those that declare it as their replica.
type vouchSet map[protocol.AccountID]vouchKind

// vouchKind says why a node vouches for an account. A replica declaration
// is the declaring account's word alone (anyone can name any peer ID, the
// patient's own node or her replica included), so on a contested block it
// vouches only when no other claim on the block has a party this node
// vouches for (a rival): otherwise anyone could declare the patient's
// node, or her replica, his replica, claim her record and be served it.
// Holding an account's keys vouches for it on every block.
type vouchKind uint8

const (
	vouchNone    vouchKind = iota
	vouchReplica           // the account declares this node its replica
	vouchLocal             // this node holds the account's keys
)

// vouches tells whether v vouches for id on a block where another claim
// has a party v vouches for (rival) or not.
func (v vouchSet) vouches(id protocol.AccountID, rival bool) bool {
	return v[id] == vouchLocal || (v[id] == vouchReplica && !rival)
}

// rivalOf tells whether a claim in as other than a has an author v
// vouches for, or a subject v vouches for under a proven claim (a pending
// claim naming the patient is no rival: it counts for nobody), or names an
// account whose keys this node holds as a reader (or a revoked or expired
// one): a grantee's node must not keep, on a stranger's replica
// declaration, what the subject revoked.
func rivalOf(a *Access, as []*Access, v vouchSet) bool {
	local := func(rs []Reader) bool {
		return slices.ContainsFunc(rs, func(r Reader) bool { return v[r.Account] == vouchLocal })
	}
	for _, o := range as {
		if o == a || !o.Known {
			continue
		}
		if v[o.Author] != vouchNone || (v[o.Subject] != vouchNone && o.proven()) || local(o.Readers) || local(o.Revoked) || local(o.Expired) {
			return true
		}
	}
	return false
}

// claimCounts says whether claim a counts on a node that vouches for v,
// when contested tells whether the block in question has more than one
// claim (counting claims on other roots it belongs to). A contested block
// is taken to have a rival (see vouchKind); claimCountsAmong knows.
func claimCounts(a *Access, contested bool, v vouchSet) Decision {
	return claimCountsRival(a, contested, contested, v)
}

// claimCountsAmong is claimCounts for claim a among the claims as on the
// block.
func claimCountsAmong(a *Access, as []*Access, v vouchSet) Decision {
	known := 0
	for _, o := range as {
		if o.Known {
			known++
		}
	}
	return claimCountsRival(a, known > 1, known > 1 && rivalOf(a, as, v), v)
}

func claimCountsRival(a *Access, contested, rival bool, v vouchSet) Decision {
	switch {
	case !a.Known:
		return refuse(RuleClaimNone, "no record entry claims %s", a.Record)
	case v.vouches(a.Author, rival):
		return allow(RuleClaimVouched, "claim %s by %s, an account this node vouches for", a.Entry, a.Author)
	case v.vouches(a.Subject, rival) && a.proven():
		return allow(RuleClaimVouched, "claim %s about %s, an account this node vouches for, %s", a.Entry, a.Subject, a.Proof)
	case !a.proven():
		return refuse(RuleClaimPending, "claim %s by %s about %s is not acknowledged by its subject", a.Entry, a.Author, a.Subject)
	case contested:
		return refuse(RuleClaimContested, "claim %s by %s about %s is contested and this node vouches for neither", a.Entry, a.Author, a.Subject)
	}
	return allow(RuleClaimProven, "claim %s, %s and uncontested", a.Entry, a.Proof)
}

// countingClaims returns the claims among as (every claim on a block's
// roots) that count on a node that vouches for v.
func countingClaims(as []*Access, v vouchSet) []*Access {
	var out []*Access
	for _, a := range as {
		if a.Known && claimCountsAmong(a, as, v).Allow {
			out = append(out, a)
		}
	}
	return out
}

// peerRoles is what a peer is to the accounts this repo knows: the
// accounts that declare it as a device (acting for them) and those that
// declare it as their replica.
type peerRoles struct {
	acting, replicating []protocol.AccountID
}

func (p peerRoles) known() bool { return len(p.acting) > 0 || len(p.replicating) > 0 }

// keepPeerAddrs decides whether the node keeps, in its address book, where
// a peer listens. Only the chains' device and replica entries make a peer
// act for an account; what the peer says of itself counts for nothing. A
// kept address gives the peer nothing either: it is only where to dial.
//
// crowded tells, for a peer the book does not keep yet, that every
// account declaring it has MaxKeptPeersPerAccount peers in the book
// already: the book's places are shared among accounts, so a chain that
// declares a thousand nodes evicts nobody else's.
func keepPeerAddrs(peer peerRoles, crowded bool) Decision {
	if !peer.known() {
		return refuse(RuleAddrsUnknown, "peer is no declared device or replica of any account this repo knows")
	}
	if crowded {
		return refuse(RuleAddrsCrowded, "every account declaring the peer has %d nodes in the address book already", MaxKeptPeersPerAccount)
	}
	return allow(RuleAddrsKept, "peer is a declared node of %d account(s) this repo knows", len(peer.acting)+len(peer.replicating))
}

// serveRecordBlock decides whether a block of a record DAG is sent to a
// peer: claims are every claim on every record root the block belongs to,
// held whether this node has the block.
func serveRecordBlock(peer peerRoles, claims []*Access, held bool, v vouchSet) Decision {
	if !peer.known() {
		return refuse(RulePeerUnknown, "peer is no declared device or replica of any account")
	}
	counting := countingClaims(claims, v)
	if a := rekeyedAmong(counting); a != nil {
		return refuse(RuleServeRekeyed, "block of record %s, which its subject re-keyed as %s: served to nobody", a.Record, a.Rekeyed.New)
	}
	if !held {
		return refuse(RuleBlockNotHeld, "record block not held here")
	}
	for _, a := range counting {
		for _, id := range peer.replicating {
			if a.Subject == id || a.Author == id {
				return allow(RuleServeReplica, "block of record %s, kept by a declared replica of %s", a.Record, id)
			}
		}
		for _, id := range peer.acting {
			if d := readDecision(a, id); d.Allow {
				return allow(RuleServeReader, "block of record %s: %s", a.Record, d.Reason)
			}
		}
	}
	if len(counting) == 0 {
		why := "no record entry claims it"
		for _, a := range claims {
			if a.Known {
				why = claimCounts(a, len(claims) > 1, v).Reason
				break
			}
		}
		return refuse(RuleServeNoClaim, "no claim on the block counts on this node (%s)", why)
	}
	return refuse(RuleServeNoReader, "no account of the peer may read the record now")
}

// serveChainBlock decides whether a chain block of account owner is sent
// to a peer. shared maps each account the peer acts for to the claims of
// the records it and owner both appear in.
func serveChainBlock(peer peerRoles, owner protocol.AccountID, shared map[protocol.AccountID][]*Access, v vouchSet) Decision {
	if !peer.known() {
		return refuse(RulePeerUnknown, "peer is no declared device or replica of any account")
	}
	if slices.Contains(peer.replicating, owner) {
		return allow(RuleChainReplica, "chain block of %s, whose declared replica the peer is", owner)
	}
	if slices.Contains(peer.acting, owner) {
		return allow(RuleChainOwn, "chain block of %s, the peer's own account", owner)
	}
	for _, id := range peer.acting {
		for _, a := range countingClaims(shared[id], v) {
			if why := entitledToChain(a, owner, id); why != "" {
				return allow(RuleChainShared, "chain block of %s: %s (record %s)", owner, why, a.Record)
			}
		}
	}
	return refuse(RuleChainNotShared, "chain block of %s, which no account of the peer shares a record with", owner)
}

// entitledToChain says why claim a entitles account id to the chain of
// account owner, or "" when it does not: owner wrote a record id may read
// (or could until a revocation, which id must be able to learn of), or
// owner is the subject and granted it to id, or id wrote it about owner
// and owner acknowledged it. Merely naming owner as the subject of a
// record entry does not open owner's chain to its writer.
func entitledToChain(a *Access, owner, id protocol.AccountID) string {
	_, reader := a.Reader(id)
	revoked := slices.ContainsFunc(a.Revoked, func(r Reader) bool { return r.Account == id })
	switch {
	case a.Author == owner && (reader || revoked):
		return fmt.Sprintf("%s wrote a record %s reads or was revoked from", owner, id)
	case a.Subject == owner && a.Author == id:
		if a.Acked {
			return fmt.Sprintf("%s acknowledged the record %s wrote about it", owner, id)
		}
	case a.Subject == owner:
		// Only the owner's own grants (and revocations), and its
		// guardians' that count, open its chain: keys an author wrapped at
		// creation for third parties do not open the subject's chain to
		// them.
		if rd, _ := a.Reader(id); (reader && (rd.Via.Account == owner || rd.Guardian != "")) || revoked {
			return fmt.Sprintf("%s granted (or revoked) %s a record it is the subject of", owner, id)
		}
	}
	if why := guardianEntitled(a, owner, id); why != "" {
		return why
	}
	return ""
}

// serveProfile decides whether the profile (first chain block) of an
// account is given to a peer that asks for it: local tells whether the
// account is one of this repo's, ownNode whether the peer is a declared
// device or replica of one of this repo's accounts, chain whether the
// peer may have the account's whole chain here (serveChain: a guardian
// granted it a ward's record, say; the profile is how it starts to hold
// that chain).
func serveProfile(local, ownNode, chain bool) Decision {
	if local {
		return allow(RuleProfilePublic, "the profile of an account of this node is public")
	}
	if ownNode {
		return allow(RuleProfileOwnNode, "the peer is a declared node of an account of this node")
	}
	if chain {
		return allow(RuleProfileChain, "the peer may have the account's chain from this node")
	}
	return refuse(RuleProfileRefused, "a contact's profile is given only to this node's accounts' own nodes and to peers entitled to its chain")
}

// viewRank orders the claims on one CID for account id's own view: lower
// ranks first, claim order within a rank; -1 leaves a claim out (it does
// not name id).
func viewRank(a *Access, id protocol.AccountID, v vouchSet) int {
	if !a.Known {
		return -1
	}
	_, reader := a.Reader(id)
	named := reader || a.Author == id || a.Subject == id ||
		slices.ContainsFunc(a.Revoked, func(r Reader) bool { return r.Account == id }) ||
		slices.ContainsFunc(a.Expired, func(r Reader) bool { return r.Account == id })
	switch {
	case !named:
		return -1
	case a.Author == id:
		return 0 // what id itself wrote
	case a.Subject == id && a.proven():
		return 1 // what id acknowledged
	case a.Subject == id:
		return 5 // about id, to be checked and acknowledged
	case claimCounts(a, a.Contested, v).Allow:
		return 2
	case a.proven():
		return 3 // id is a reader under a proven claim that does not count here (contested): only its key can tell
	}
	return 4 // id is a reader under a pending claim that does not count here
}

// viewOrder returns the claims in as that name account id, in the order
// id's own view tries them (see viewRank).
func viewOrder(as []*Access, id protocol.AccountID, v vouchSet) []*Access {
	var out []*Access
	for _, a := range as {
		if viewRank(a, id, v) >= 0 {
			out = append(out, a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return viewRank(out[i], id, v) < viewRank(out[j], id, v) })
	return out
}

// MaxPendingFetch bounds the records one author can have a node fetch
// for one local account before she acknowledges them (RuleWantPending):
// only the author's first MaxPendingFetch pending claims about her, in
// the order of his chain, held or not, are wanted. An acknowledged claim
// no longer counts against it; one she never acknowledges (its key does
// not open) keeps its place, at the author's own cost.
const MaxPendingFetch = 32

// pendingFacts is what wantRecord needs, beyond the claims, to judge a
// claim that does not count on this node (yet): the accounts this repo
// added as contacts, whether the block is contested (more than one claim
// on the record root, or on any record root it belongs to), and how many
// of the candidate author's pending claims about the account come before
// this one on his chain (see pendingCandidate); and, for each account
// that appointed the account guardian with read and whose appointment it
// has not accepted, why (guardianConsent).
type pendingFacts struct {
	contacts   map[protocol.AccountID]bool
	contested  bool
	earlier    int
	unaccepted map[protocol.AccountID]Decision
}

// pendingCandidate returns the claim among as that RuleWantPending may
// fetch the record under for local account id, or nil: a claim that does
// not count here, about id by another account, whose record entry wraps a
// key for id (§5.3 makes every valid one do so), by an account this repo
// added as a contact. Whether a contact's claim is true is for id's key
// to tell, once the blocks are here: fetching it proves and shows
// nothing; the claim stays pending until id acknowledges it (ackFor).
func pendingCandidate(as []*Access, id protocol.AccountID, v vouchSet, contacts map[protocol.AccountID]bool) *Access {
	for _, a := range as {
		if !a.Known || a.proven() || a.Subject != id || a.Author == id || !contacts[a.Author] {
			continue
		}
		if rd, ok := a.Reader(id); !ok || rd.Role != "subject" {
			continue
		}
		if claimCountsAmong(a, as, v).Allow {
			continue
		}
		return a
	}
	return nil
}

// wantRecord decides whether a node fetches a record it does not hold
// whole, for account id: id is an account of this repo that may read it
// (under a claim that counts), or id declares this node its replica and
// wrote the record or is its subject, or id is an account of this repo
// and a contact wrote the record about it, not acknowledged yet, on an
// uncontested block, among the contact's first MaxPendingFetch such
// records (pendingCandidate). What id reads only by the read right of an
// appointment as guardian that it has not accepted (GuardianReadScope,
// p.unaccepted) is not fetched: until the guardian accepts, the
// appointment counts for nothing on its node, which does not fill with
// the ward's records.
func wantRecord(as []*Access, id protocol.AccountID, local, replica bool, v vouchSet, p pendingFacts) Decision {
	if a := rekeyedAmong(countingClaims(as, v)); a != nil {
		return refuse(RuleWantRekeyed, "its subject re-keyed it as %s: that is fetched instead", a.Rekeyed.New)
	}
	var unaccepted *Decision
	for _, a := range countingClaims(as, v) {
		if local {
			if d := readDecision(a, id); d.Allow {
				rd, _ := a.Reader(id)
				if c, ok := p.unaccepted[a.Subject]; ok && d.Rule == RuleReadScope && rd.Scope == GuardianReadScope {
					d := refuse(RuleWantUnaccepted, "%s reads it only as guardian of %s, an appointment it has not accepted: %s", id, a.Subject, c.Reason)
					unaccepted = &d
					continue
				}
				return allow(RuleWantReader, "%s", d.Reason)
			}
		}
		if replica && (a.Author == id || a.Subject == id) {
			return allow(RuleWantReplica, "this node is a declared replica of %s, who wrote the record or is its subject", id)
		}
	}
	if a := pendingCandidate(as, id, v, p.contacts); local && a != nil && !p.contested && a.Rekeyed == nil {
		if p.earlier >= MaxPendingFetch {
			return refuse(RuleWantPendingCap, "%s has %d earlier records about %s not acknowledged yet (at most %d are fetched)", a.Author, p.earlier, id, MaxPendingFetch)
		}
		return allow(RuleWantPending, "%s, a contact, wrote claim %s about %s, to be checked and acknowledged", a.Author, a.Entry, id)
	}
	if unaccepted != nil {
		return *unaccepted
	}
	return refuse(RuleWantNone, "%s may not read the record here and this node replicates no party of it", id)
}

// keepRecord decides whether a node keeps a record it holds: local are
// the repo's accounts, replicaOf the accounts that declare this node their
// replica (v is their union). A record is dropped when a proven claim
// shows that a local account lost access to it (revoked or expired) and no
// claim that counts here needs it. A claim that does not count (a
// stranger's, or one of several that nobody here vouches for) can thus
// never keep a revoked record on this node; at worst it makes the node
// drop a copy, which the next read fetches again under the policy.
func keepRecord(as []*Access, local, replicaOf map[protocol.AccountID]bool, v vouchSet) Decision {
	for _, a := range countingClaims(as, v) {
		if local[a.Author] || local[a.Subject] || replicaOf[a.Author] || replicaOf[a.Subject] {
			return allow(RuleKeepNeeded, "its author or subject is an account of this node or one it replicates")
		}
		for _, rd := range a.Readers {
			if local[rd.Account] {
				return allow(RuleKeepNeeded, "%s, an account of this node, may read it", rd.Account)
			}
		}
	}
	for _, a := range as {
		if !a.proven() {
			continue
		}
		for _, lists := range [][]Reader{a.Revoked, a.Expired} {
			for _, rd := range lists {
				if local[rd.Account] {
					return refuse(RuleDropRevoked, "%s lost access to it under %s and nobody here needs it", rd.Account, a.Entry)
				}
			}
		}
	}
	return allow(RuleKeepNotReceived, "no local account lost access to it")
}

// keepRekeyed decides, ahead of keepRecord, about a record a claim that
// counts here says its subject re-keyed: it is dropped once its new
// version is held here (held tells); until then keepRecord decides (a
// revoked reader's node drops it at once), and whatever it keeps is
// served to nobody (RuleServeRekeyed). ok is false when no such claim
// exists. A claim that does not count here (an attacker's, marked by
// himself) never drops anything.
func keepRekeyed(as []*Access, v vouchSet, held func(cid.Cid) bool) (d Decision, ok bool) {
	a := rekeyedAmong(countingClaims(as, v))
	if a == nil {
		return Decision{}, false
	}
	if nc, err := cid.Decode(a.Rekeyed.New); err == nil && held(nc) {
		return refuse(RuleDropRekeyed, "its subject re-keyed it as %s, which this node holds", a.Rekeyed.New), true
	}
	return allow(RuleKeepRekeyAwait, "its subject re-keyed it as %s, not here yet: kept (unless revoked) until it is, served to nobody", a.Rekeyed.New), true
}

// exportRecord decides whether an export made for account id holds a
// record (its blocks); as are the record's claims.
func exportRecord(as []*Access, id protocol.AccountID, v vouchSet) Decision {
	if a := rekeyedAmong(countingClaims(as, v)); a != nil {
		return refuse(RuleExportRekeyed, "its subject re-keyed it as %s", a.Rekeyed.New)
	}
	for _, a := range countingClaims(as, v) {
		if d := readDecision(a, id); d.Allow {
			return allow(RuleExportReadable, "%s", d.Reason)
		}
	}
	return refuse(RuleExportWithheld, "%s may not read it", id)
}

// changeRecord decides whether account id may grant, revoke or hide a
// record (verb names the act) under the claim of its view, a: only the
// subject may, and only under a claim that counts or that it is about to
// acknowledge (a pending claim about id that id's key opened).
func changeRecord(a *Access, id protocol.AccountID, verb string) Decision {
	if !a.Known {
		return refuse(RuleChangeNotSubj, "%s: unknown record", a.Record)
	}
	if a.Subject != id {
		return refuse(RuleChangeNotSubj, "%s: only the record's subject (%s) can %s it", a.Record, a.Subject, verb)
	}
	return allow(RuleChangeSubject, "%s is the record's subject", id)
}

// ---- Attested roles ----
//
// A role an account declares in its profile is only what it says of
// itself. A role is verified when a path of live attestations leads from
// an authority the user trusts down to the account: an authority attests
// clinics (and, for a regional body under a national one, authorities), a
// clinic attests its clinicians. Every account on the path must declare
// the role it is attested for, and every attestation must be the latest
// word of its attester about that account (a withdrawal or a newer
// attestation replaces it), unexpired, and given by an account of the
// role that may give it. A path never visits an account twice and holds
// at most MaxRolePath accounts.

// The attestation rules. Each is listed, with a case it permits or
// refuses, in policy_test.go.
const (
	RuleRoleTrusted    Rule = "role/trusted"       // the account is an authority the user trusts
	RuleRoleVerified   Rule = "role/verified"      // live attestations lead from a trusted authority to the account
	RuleRoleDeclared   Rule = "role/declared-only" // no attestation of the account: the role is only what it says of itself
	RuleRoleMismatch   Rule = "role/mismatch"      // the account's declared role (or its attestation's role) is not the role in question
	RuleRoleAttester   Rule = "role/attester-role" // the attester may not attest that role (a clinic attesting an authority, a patient a clinic)
	RuleRoleWithdrawn  Rule = "role/withdrawn"     // the attester withdrew its attestation
	RuleRoleExpired    Rule = "role/expired"       // the attestation expired
	RuleRoleUntrusted  Rule = "role/untrusted"     // the path ends at an authority the user does not trust
	RuleRoleLoop       Rule = "role/loop"          // the path would visit an account twice
	RuleRoleTooLong    Rule = "role/too-long"      // the path would be longer than MaxRolePath accounts
	RuleRoleUnknown    Rule = "role/unknown"       // the repo holds no chain of the account
	RuleRoleNotAttests Rule = "role/not-attested"  // a patient's or app's role is never attested: nothing to verify
	RuleAttestMay      Rule = "attest/may"         // an account of the attesting role attests a role it may attest
	RuleAttestMayNot   Rule = "attest/may-not"     // any other attestation is refused before it is written

	// Role proofs and the directory (node/attest): public by design.
	RuleChainAttester    Rule = "serve/chain-attester"     // the chain of a clinic or authority that attests accounts goes to anyone verifying a role
	RuleChainNotAttester Rule = "serve/chain-not-attester" // any other chain does not (serveChainBlock decides where it goes)
	RuleProfileAttested  Rule = "profile/attested"         // the profile of an account a local clinic or authority attests, live, to anyone
	RuleProfileNotListed Rule = "profile/not-attested"     // not the profile of an account no local attester attests (serveProfile decides)
)

// serveRoleChain decides whether the chain of an account that declares
// role and attested accounts (attests) goes into a role proof, to anyone:
// an attester's chain must be readable by every node that verifies a
// role resting on it, so a clinic's or authority's chain is public.
func serveRoleChain(role protocol.Role, attests bool) Decision {
	if attests && (role == protocol.RoleClinic || role == protocol.RoleAuthority) {
		return allow(RuleChainAttester, "the chain of a %s that attests accounts is public", role)
	}
	return refuse(RuleChainNotAttester, "only the chain of a clinic or authority that attests accounts is public")
}

// serveAttestedProfile decides whether the profile (first chain block) of
// an account goes to anyone in a role proof or a directory answer: when a
// local account attests it live (the clinic on this node lists it).
func serveAttestedProfile(attestedByLocal bool) Decision {
	if attestedByLocal {
		return allow(RuleProfileAttested, "an account of this node attests it: its directory entry is public")
	}
	return refuse(RuleProfileNotListed, "no account of this node attests it")
}

// MaxRolePath bounds the accounts on an attestation path, the trusted
// authority and the attested account included (trusted authority →
// regional authority → … → clinic → clinician).
const MaxRolePath = 5

// attesterRoleFor returns the role an attester of role must declare.
func attesterRoleFor(role protocol.Role) (protocol.Role, bool) {
	switch role {
	case protocol.RoleClinician:
		return protocol.RoleClinic, true
	case protocol.RoleClinic, protocol.RoleAuthority:
		return protocol.RoleAuthority, true
	}
	return "", false
}

// mayAttest decides whether an account declaring attester may attest role.
func mayAttest(attester, role protocol.Role) Decision {
	want, ok := attesterRoleFor(role)
	if !ok {
		return refuse(RuleAttestMayNot, "the role %s is never attested", role)
	}
	if attester != want {
		return refuse(RuleAttestMayNot, "a %s cannot attest a %s: only a %s can", attester, role, want)
	}
	return allow(RuleAttestMay, "a %s attests a %s", attester, role)
}

// roleFacts are the verified facts a role decision reads: each known
// account's declared role, the latest attestation event of each attester
// about each account (by attested account), and the trusted authorities.
type roleFacts struct {
	declared map[protocol.AccountID]protocol.Role
	attests  map[protocol.AccountID][]attestEvent
	trusted  map[protocol.AccountID]bool
}

// RoleProof is the answer to "does this account hold this role, and why".
type RoleProof struct {
	Account protocol.AccountID `json:"account"`
	// Role is the role in question; Declared the role the account's
	// profile declares ("" when the repo holds no chain of it).
	Role     protocol.Role `json:"role"`
	Declared protocol.Role `json:"declared,omitempty"`
	Verified bool          `json:"verified"`
	// Path runs from the trusted authority to the account (verified), or
	// as far as the best path went (refused).
	Path []protocol.AccountID `json:"path,omitempty"`
	// Department and Emergency are what the account's own attestation
	// says (its clinic's, for a clinician).
	Department string `json:"department,omitempty"`
	Emergency  bool   `json:"emergency,omitempty"`
	// Until is when the proof stops holding (the earliest expiry on the
	// path); zero when nothing on it expires.
	Until time.Time `json:"until,omitzero"`
	Rule  Rule      `json:"rule"`
	Why   string    `json:"why"`
}

// verifyRole decides whether account id holds role at now, from facts f:
// the first verified path in a deterministic order (attesters by ID), or
// the refusal that got furthest.
func verifyRole(id protocol.AccountID, role protocol.Role, f *roleFacts, now time.Time) RoleProof {
	p := roleStep(id, role, []protocol.AccountID{id}, f, now)
	p.Account, p.Role, p.Declared = id, role, f.declared[id]
	slices.Reverse(p.Path)
	return p
}

// roleStep judges account id for role, reached by the path up (id last,
// the attested account first).
func roleStep(id protocol.AccountID, role protocol.Role, up []protocol.AccountID, f *roleFacts, now time.Time) RoleProof {
	path := slices.Clone(up)
	declared, known := f.declared[id]
	if !known {
		return RoleProof{Path: path, Rule: RuleRoleUnknown, Why: fmt.Sprintf("no chain of %s is held here", id)}
	}
	if _, ok := attesterRoleFor(role); !ok {
		return RoleProof{Path: path, Rule: RuleRoleNotAttests, Why: fmt.Sprintf("the role %s is never attested", role)}
	}
	if declared != role {
		return RoleProof{Path: path, Rule: RuleRoleMismatch, Why: fmt.Sprintf("%s declares the role %s, not %s", id, declared, role)}
	}
	if role == protocol.RoleAuthority && f.trusted[id] {
		return RoleProof{Verified: true, Path: path, Rule: RuleRoleTrusted, Why: fmt.Sprintf("%s is an authority you trust", id)}
	}
	evs := f.attests[id]
	if len(evs) == 0 {
		if role == protocol.RoleAuthority {
			return RoleProof{Path: path, Rule: RuleRoleUntrusted, Why: fmt.Sprintf("%s is an authority you do not trust, and no trusted authority attests it", id)}
		}
		return RoleProof{Path: path, Rule: RuleRoleDeclared, Why: fmt.Sprintf("%s declares the role %s and nobody attests it", id, role)}
	}
	want, _ := attesterRoleFor(role)
	var best RoleProof
	consider := func(p RoleProof) {
		if best.Rule == "" || len(p.Path) > len(best.Path) {
			best = p
		}
	}
	for _, ev := range evs {
		at := append(slices.Clone(path), ev.Attester)
		switch {
		case slices.Contains(path, ev.Attester):
			consider(RoleProof{Path: at, Rule: RuleRoleLoop, Why: fmt.Sprintf("the attestation of %s by %s closes a loop", id, ev.Attester)})
			continue
		case ev.End:
			consider(RoleProof{Path: at, Rule: RuleRoleWithdrawn, Why: fmt.Sprintf("%s withdrew its attestation of %s at %s", ev.Attester, id, ev.Via)})
			continue
		case ev.Role != role:
			consider(RoleProof{Path: at, Rule: RuleRoleMismatch, Why: fmt.Sprintf("%s attests %s as %s, not %s", ev.Attester, id, ev.Role, role)})
			continue
		case ev.Expires != 0 && !now.Before(time.UnixMilli(ev.Expires)):
			consider(RoleProof{Path: at, Rule: RuleRoleExpired, Why: fmt.Sprintf("the attestation of %s by %s expired at %s", id, ev.Attester, time.UnixMilli(ev.Expires).UTC().Format(time.RFC3339))})
			continue
		case f.declared[ev.Attester] != want:
			consider(RoleProof{Path: at, Rule: RuleRoleAttester, Why: fmt.Sprintf("%s declares the role %q: only a %s can attest a %s", ev.Attester, f.declared[ev.Attester], want, role)})
			continue
		case len(at) > MaxRolePath:
			consider(RoleProof{Path: at, Rule: RuleRoleTooLong, Why: fmt.Sprintf("the path to %s would hold more than %d accounts", id, MaxRolePath)})
			continue
		}
		p := roleStep(ev.Attester, want, at, f, now)
		if !p.Verified {
			consider(p)
			continue
		}
		p.Rule, p.Department, p.Emergency = RuleRoleVerified, ev.Department, ev.Emergency && role == protocol.RoleClinician
		if len(up) == 1 {
			p.Why = fmt.Sprintf("%s is attested as %s by %s, on a path of live attestations from the trusted authority %s", id, role, ev.Attester, p.Path[len(p.Path)-1])
		}
		if ev.Expires != 0 {
			if end := time.UnixMilli(ev.Expires).UTC(); p.Until.IsZero() || end.Before(p.Until) {
				p.Until = end
			}
		}
		return p
	}
	return best
}

// ---- Standing grants ----
//
// A standing grant is a scope entry on the subject's chain: the subject
// gives an account every record of hers in a scope, present and future.
// The keys come in scoped entries, written by a record's author (in the
// block of its record entry, for the grantees it sees on the subject's
// chain) or by the subject's node (for what no author covered). A key
// names the scope it is given under, and counts only while the
// subject's chain holds that scope, live, for its grantee: so ending
// the scope is one entry that ends future wrapping and every record the
// scope covered, on every node holding the subject's chain, replicas that
// cannot open envelopes included. Whether a record is in a scope is judged
// by whoever wraps (from the sealed envelope); the policy never sees the
// envelope and needs not: a key given outside its scope gives no more than
// an author's key for a reader of its choice (§5.3), and the subject's
// ending of the scope takes it away too.

// latestScope returns the latest standing-grant event (scope or unscope
// entry, in chain order) of scope for grantee to among a subject's events.
func latestScope(evs []scopeEvent, to protocol.AccountID, scope string) (scopeEvent, bool) {
	var last scopeEvent
	found := false
	for _, ev := range evs {
		if ev.To == to && ev.Scope == scope && (!found || last.Via.before(ev.Via)) {
			last, found = ev, true
		}
	}
	return last, found
}

// scopeLive tells whether ev, a latest event, is a standing grant that
// holds at now.
func scopeLive(ev scopeEvent, found bool, now time.Time) bool {
	return found && !ev.End && (ev.Expires == 0 || now.Before(time.UnixMilli(ev.Expires)))
}

// applyScoped adds to a, the access state under claim cl, what the keys
// given under standing grants give: an account reads under such a key
// while the claim's subject's chain holds, live, the standing grant the
// key names for it, and the record is not hidden. Keys count only from
// the claim's author or subject, and only after the subject's last
// revocation of the record from the account (an author's keys come
// before everything on the subject's chain, as its record entry's do).
// An account that reads already (a grant of the record, a key from the
// record entry) is left as it is. An account whose keys under scopes all
// lost their grant is listed revoked (ended, hidden) or expired, with the
// scope; one whose keys cite a scope the subject never gave it counts for
// nothing (a.denied) and is reported.
func applyScoped(a *Access, f *recordFacts, cl *claimFact, now time.Time) {
	evs := f.scopes[cl.Subject]
	// The last revocation of the record from each grantee, by the subject
	// or by a guardian acting for her with the right to (actFor; one
	// without it, evaluateClaim reports), as evaluateClaim orders them.
	type cut struct {
		ref EntryRef
		at  int64
	}
	lastRevoke := map[protocol.AccountID]cut{}
	for _, rv := range f.Revokes {
		at := rv.Via.Time
		if rv.Via.Account != cl.Subject {
			d, t := actFor(f, cl, rv.Via, rv.Ward, protocol.RightRevoke, "revoke")
			if !d.Allow {
				continue
			}
			at = t
		}
		if cur, ok := lastRevoke[rv.From]; !ok || actBefore(cur.ref, cur.at, rv.Via, at) {
			lastRevoke[rv.From] = cut{ref: rv.Via, at: at}
		}
	}
	// later tells whether key x comes after key y: the subject's entries
	// in chain order, after everything the author gave at creation.
	later := func(x, y *keyFact) bool {
		xs, ys := x.Via.Account == cl.Subject, y.Via.Account == cl.Subject
		if xs != ys {
			return xs
		}
		return y.Via.before(x.Via)
	}
	byTo := map[protocol.AccountID][]*keyFact{}
	for i := range f.Keys {
		k := &f.Keys[i]
		if k.Scope == "" || k.To == cl.Author || k.To == cl.Subject {
			continue
		}
		if k.Via.Account != cl.Author && k.Via.Account != cl.Subject {
			a.Problems = append(a.Problems, fmt.Sprintf("key for %s under standing grant %s by %s at %s ignored: only the record's author or subject may give one", k.To, k.Scope, k.Via.Account, k.Via))
			continue
		}
		if rv, ok := lastRevoke[k.To]; ok && (k.Via.Account != cl.Subject || actBefore(k.Via, k.Via.Time, rv.ref, rv.at)) {
			continue // the subject (or her guardian) revoked the record from k.To after it
		}
		byTo[k.To] = append(byTo[k.To], k)
	}
	grantees := make([]protocol.AccountID, 0, len(byTo))
	for id := range byTo {
		grantees = append(grantees, id)
	}
	sort.Slice(grantees, func(i, j int) bool { return grantees[i] < grantees[j] })
	drop := func(rs []Reader, id protocol.AccountID) []Reader {
		return slices.DeleteFunc(rs, func(r Reader) bool { return r.Account == id })
	}
	for _, to := range grantees {
		if _, ok := a.Reader(to); ok {
			continue
		}
		var live, lost *keyFact
		var lostAs Reader
		unknown := []*keyFact{}
		for _, k := range byTo[to] {
			ev, found := latestScope(evs, to, k.Scope)
			r := Reader{Account: to, Role: "grantee", Via: k.Via, Scope: k.Scope}
			switch {
			case !found:
				unknown = append(unknown, k)
				continue
			case scopeLive(ev, found, now) && !a.Hidden:
				if live == nil || later(k, live) {
					live = k
				}
				continue
			case ev.End:
				r.Via, r.rule = ev.Via, RuleReadScopeEnded
			case !scopeLive(ev, found, now):
				r.Expires, r.rule = time.UnixMilli(ev.Expires).UTC(), RuleReadScopeExpired
			default:
				r.rule = RuleReadScopeHidden
			}
			if lost == nil || later(k, lost) {
				lost, lostAs = k, r
			}
		}
		for _, k := range unknown {
			a.Problems = append(a.Problems, fmt.Sprintf("key for %s under standing grant %s by %s at %s ignored: the subject never gave %s that standing grant", to, k.Scope, k.Via.Account, k.Via, to))
		}
		switch {
		case live != nil:
			ev, _ := latestScope(evs, to, live.Scope)
			r := Reader{Account: to, Role: "grantee", Via: live.Via, Scope: live.Scope, key: live.Key}
			if ev.Expires != 0 {
				r.Expires = time.UnixMilli(ev.Expires).UTC()
			}
			a.Revoked, a.Expired = drop(a.Revoked, to), drop(a.Expired, to)
			a.Readers = append(a.Readers, r)
		case lost != nil:
			a.Revoked, a.Expired = drop(a.Revoked, to), drop(a.Expired, to)
			if lostAs.rule == RuleReadScopeExpired {
				a.Expired = append(a.Expired, lostAs)
			} else {
				a.Revoked = append(a.Revoked, lostAs)
			}
		case len(unknown) > 0:
			a.denied = append(a.denied, Reader{Account: to, Role: "grantee", Via: unknown[0].Via, Scope: unknown[0].Scope})
		}
	}
}

// serveChain decides whether a chain block of account owner is sent to a
// peer: serveChainBlock, and, where that finds no shared record, a
// standing grant owner gave one of the peer's accounts (live, ended or
// expired: the grantee must see it end) opens owner's chain to it, so
// that the grantee learns of the grant's state and of the records it
// covers. scopes are owner's standing-grant events.
func serveChain(peer peerRoles, owner protocol.AccountID, shared map[protocol.AccountID][]*Access, scopes []scopeEvent, v vouchSet) Decision {
	d := serveChainBlock(peer, owner, shared, v)
	if d.Allow || d.Rule != RuleChainNotShared {
		return d
	}
	for _, id := range peer.acting {
		for _, ev := range scopes {
			if ev.To == id {
				return allow(RuleChainScope, "chain block of %s, which gave %s the standing grant %s at %s", owner, id, ev.Scope, ev.Via)
			}
		}
	}
	return d
}

// coverRecord decides whether a record's key is given to account to under
// the standing grant scope of its subject, whose standing-grant events
// are evs: by the record's author as it writes the record (a is nil), or
// by the subject's node later (a is her view of the record). The grant
// must be live and the record in its scope (inScope: the writer judged it
// from the envelope); the subject's node gives it only under a claim that
// is her own or acknowledged, not for a hidden record, not to an account
// that reads the record already or from which she revoked it.
func coverRecord(a *Access, subject, to protocol.AccountID, scope string, evs []scopeEvent, inScope bool, now time.Time) Decision {
	ev, found := latestScope(evs, to, scope)
	switch {
	case to == subject:
		return refuse(RuleCoverNot, "%s is the records' subject", to)
	case !scopeLive(ev, found, now):
		return refuse(RuleCoverNot, "%s holds no live standing grant %s from %s", to, scope, subject)
	case !inScope:
		return refuse(RuleCoverNot, "the record is not in %s", scope)
	}
	if a == nil {
		return allow(RuleCoverScope, "%s holds the live standing grant %s from %s, and the record is in it", to, scope, subject)
	}
	_, reads := a.Reader(to)
	revoked := slices.ContainsFunc(a.Revoked, func(r Reader) bool { return r.Account == to && r.Scope == "" })
	switch {
	case !a.Known || a.Subject != subject:
		return refuse(RuleCoverNot, "%s: not a record about %s", a.Record, subject)
	case !a.proven():
		return refuse(RuleCoverNot, "%s: %s has not acknowledged the claim yet", a.Record, subject)
	case a.Hidden:
		return refuse(RuleCoverNot, "%s is hidden: standing grants do not cover it", a.Record)
	case reads:
		return refuse(RuleCoverNot, "%s reads %s already", to, a.Record)
	case revoked:
		return refuse(RuleCoverNot, "%s revoked %s from %s", subject, a.Record, to)
	}
	return allow(RuleCoverScope, "%s holds the live standing grant %s from %s, and %s is in it", to, scope, subject, a.Record)
}

// versionOf decides whether newer is shown as the next version of older,
// older then listed only in newer's history: newer names older as the
// record it supersedes, both are about the same subject, newer is proven
// (the subject wrote or acknowledged it), and it was written by older's
// author or by the subject. A stranger's, or an unacknowledged, "new
// version" is listed as a record of its own, so it cannot tuck the real
// one out of sight.
func versionOf(newer, older *Access) Decision {
	switch {
	case !newer.Known || !older.Known || newer.Supersedes != older.Record.String():
		return refuse(RuleVersionApart, "%s does not supersede %s", newer.Record, older.Record)
	case newer.Subject != older.Subject:
		return refuse(RuleVersionApart, "%s is about %s, %s about %s", newer.Record, newer.Subject, older.Record, older.Subject)
	case !newer.proven():
		return refuse(RuleVersionApart, "%s is not acknowledged by its subject", newer.Record)
	case newer.Author != older.Author && newer.Author != newer.Subject:
		return refuse(RuleVersionApart, "%s was written by %s, neither the author of %s nor its subject", newer.Record, newer.Author, older.Record)
	}
	return allow(RuleVersionOf, "%s supersedes %s, by %s, %s", newer.Record, older.Record, newer.Author, newer.Proof)
}

// Emergency access (PROTOCOL.md §5.12 and §10.6, SECURITY.md "Emergency access").
// A custodian's node decides, for each signed request, whether to give
// its share of a patient's emergency pack to the clinician who asks.
const (
	RuleEmergencyShare       Rule = "emergency/share"         // a verified emergency clinician, fresh signed request, live pack held here for a local custodian: the share is given (and the use recorded)
	RuleEmergencyStale       Rule = "emergency/stale"         // the request's time is too far from this node's clock
	RuleEmergencyReplay      Rule = "emergency/replay"        // the request's nonce was seen before
	RuleEmergencyRetired     Rule = "emergency/retired-key"   // signed by the clinician's account key, which the clinician's chain held here retired (a thief's key after a succession)
	RuleEmergencyNoPack      Rule = "emergency/no-pack"       // no pack of the patient with that ID is held here
	RuleEmergencyNotHeld     Rule = "emergency/not-custodian" // the pack does not name the custodian asked, or it is no account of this node
	RuleEmergencyEnded       Rule = "emergency/ended"         // the patient ended the pack
	RuleEmergencyExpired     Rule = "emergency/expired"       // the pack's expiry has passed
	RuleEmergencyWindow      Rule = "emergency/window-over"   // the pack was first used longer ago than its use window
	RuleEmergencyByCustodian Rule = "emergency/by-custodian"  // the asker is a custodian of the pack (or the patient): one custodian must never gather a threshold with its own share
	RuleEmergencyNoRole      Rule = "emergency/no-role"       // the asker's clinician role is not verified by attestations reaching a trusted authority
	RuleEmergencyNotAttested Rule = "emergency/not-attested"  // the asker is a verified clinician but not attested for emergency access
)

// emergencyFacts are what a custodian's node knows when it decides on an
// emergency request.
type emergencyFacts struct {
	created  time.Time               // the request's creation time
	replay   bool                    // its nonce was seen before
	retired  bool                    // its signer, the clinician's account key, is retired on the clinician's chain held here
	pack     *protocol.EmergencyPack // the pack held here, nil if none
	held     []protocol.AccountID    // this node's accounts the pack names as custodians
	asker    protocol.AccountID      // the clinician
	patient  protocol.AccountID
	ended    bool
	firstUse time.Time // zero: never used
	role     EmergencyRole
}

// EmergencyRole is what attestations say of an account asking for
// emergency access.
type EmergencyRole struct {
	Verified  bool   `json:"verified"`  // a chain of live attestations reaches a trusted authority
	Emergency bool   `json:"emergency"` // the attestation allows emergency access
	Why       string `json:"why"`       // for people
}

// emergencyShare decides whether the custodian gives its share.
func emergencyShare(f emergencyFacts, now time.Time) Decision {
	skew := time.Duration(protocol.EmergencyRequestSkew) * time.Millisecond
	if d := now.Sub(f.created); d > skew || d < -skew {
		return refuse(RuleEmergencyStale, "request made at %s, more than %s from this node's clock", f.created.UTC().Format(time.RFC3339), skew)
	}
	if f.replay {
		return refuse(RuleEmergencyReplay, "request replayed: its nonce was seen before")
	}
	if f.retired {
		return refuse(RuleEmergencyRetired, "the request is signed by %s's account key, which its chain retired: the device that signed no longer acts for the clinician", f.asker)
	}
	if f.pack == nil {
		return refuse(RuleEmergencyNoPack, "no emergency pack of %s with that ID is held here", f.patient)
	}
	if len(f.held) == 0 {
		return refuse(RuleEmergencyNotHeld, "no account of this node is a custodian of the pack")
	}
	if f.ended {
		return refuse(RuleEmergencyEnded, "%s ended this emergency pack", f.patient)
	}
	if until := time.UnixMilli(f.pack.Until); !now.Before(until) {
		return refuse(RuleEmergencyExpired, "the pack expired at %s", until.UTC().Format(time.RFC3339))
	}
	if !f.firstUse.IsZero() {
		if end := f.firstUse.Add(time.Duration(f.pack.Window) * time.Millisecond); !now.Before(end) {
			return refuse(RuleEmergencyWindow, "the pack was first opened at %s; its use window ended at %s (the patient must set up a new pack)", f.firstUse.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
		}
	}
	if _, custodian := f.pack.ShareOf(f.asker); custodian || f.asker == f.patient {
		return refuse(RuleEmergencyByCustodian, "%s is a custodian of the pack (or its patient): no custodian gathers shares", f.asker)
	}
	if !f.role.Verified {
		return refuse(RuleEmergencyNoRole, "%s is no verified clinician: %s", f.asker, f.role.Why)
	}
	if !f.role.Emergency {
		return refuse(RuleEmergencyNotAttested, "%s is a verified clinician but not attested for emergency access: %s", f.asker, f.role.Why)
	}
	return allow(RuleEmergencyShare, "%s is a verified emergency clinician (%s); pack of %s live until %s", f.asker, f.role.Why, f.patient, time.UnixMilli(f.pack.Until).UTC().Format(time.RFC3339))
}

// Which of the patient's guardians a new pack names, by themselves, to be
// told of every use (Repo.emergencyNotify; PROTOCOL.md §5.12 and §5.13).
// The notices are the patient's; a node is added for a guardian only once
// the guardian took the appointment, as its node acts for her only then.
const (
	RuleEmergencyNotifyGuardian    Rule = "emergency/notify-guardian"     // a live appointment its guardian accepted (guardianConsent): the guardian's declared nodes are told of every use
	RuleEmergencyNotifyNotAccepted Rule = "emergency/notify-not-accepted" // an appointment its guardian has not accepted (pending, widened, declined or resigned): its nodes are not added (the patient may still name one herself)
	RuleEmergencyNotifyEnded       Rule = "emergency/notify-ended"        // a removed guardian, or an appointment past its until: its nodes are not added
)

// emergencyNotifyGuardian decides whether the declared nodes of the
// guardian of appointment s, whose consent to it is consent, go on a new
// pack's notify list.
func emergencyNotifyGuardian(s guardianSpan, consent Decision, now time.Time) Decision {
	switch {
	case s.Closed:
		return refuse(RuleEmergencyNotifyEnded, "the patient removed %s as guardian at %s", s.Guardian, s.Ended)
	case s.Until != 0 && !now.Before(time.UnixMilli(s.Until)):
		return refuse(RuleEmergencyNotifyEnded, "the appointment of %s ended at %s", s.Guardian, untilText(s.Until))
	case !consent.Allow:
		return refuse(RuleEmergencyNotifyNotAccepted, "not told by itself: %s (name its node with notify to tell it anyway)", consent.Reason)
	}
	return allow(RuleEmergencyNotifyGuardian, "%s, a guardian that took the appointment at %s (%s)", s.Guardian, s.Appointed, consent.Rule)
}

// What a custodian's node keeps (PROTOCOL.md §5.12, SECURITY.md
// "Emergency access"): at most one pack per patient, the newest she set
// up; a pack she ended, or replaced by a newer one on her chain, goes at
// once and never comes back (its ID and the newest chain position seen
// are remembered), whoever delivers it again.
const (
	RuleEmergencyKeep        Rule = "emergency/keep"            // a pack signed by the patient, naming an account of this node as custodian, not ended, not superseded, not expired: kept
	RuleEmergencyKeepNotMine Rule = "emergency/keep-not-mine"   // the pack names no account of this node as custodian
	RuleEmergencyKeepEnded   Rule = "emergency/keep-ended"      // the patient ended the pack (an end block she signed, or her chain held here)
	RuleEmergencyKeepOlder   Rule = "emergency/keep-superseded" // a newer pack of the patient (later on her chain) was seen: one pack per patient is kept
	RuleEmergencyKeepExpired Rule = "emergency/keep-expired"    // the pack's expiry has passed
)

// emergencyHoldFacts are what a custodian's node knows of a pack it is
// given or holds. Everything here comes from blocks the patient signed
// (a pack or end keyed by its signer) or her verified chain held here,
// so nobody else can make a custodian keep or drop her pack.
type emergencyHoldFacts struct {
	patient protocol.AccountID
	mine    bool   // the pack names an account of this node as custodian
	seq     uint64 // the position on the patient's chain of the pack's block
	until   time.Time
	ended   bool   // an end of this pack by the patient was seen
	newest  uint64 // the newest position of a pack of the patient seen here (delivered, or on her chain held here)
	newer   bool   // a pack of the patient other than this one was seen at newest
}

// emergencyKeep decides whether a custodian's node keeps a pack: on
// delivery and at every pruning round.
func emergencyKeep(f emergencyHoldFacts, now time.Time) Decision {
	if !f.mine {
		return refuse(RuleEmergencyKeepNotMine, "the pack of %s names no account of this node as custodian", f.patient)
	}
	if f.ended {
		return refuse(RuleEmergencyKeepEnded, "%s ended this pack", f.patient)
	}
	if f.newer && f.newest > f.seq {
		return refuse(RuleEmergencyKeepOlder, "%s set up a newer pack (block %d, this one is in block %d)", f.patient, f.newest, f.seq)
	}
	if !now.Before(f.until) {
		return refuse(RuleEmergencyKeepExpired, "the pack expired at %s", f.until.UTC().Format(time.RFC3339))
	}
	return allow(RuleEmergencyKeep, "the newest live pack of %s (block %d), until %s", f.patient, f.seq, f.until.UTC().Format(time.RFC3339))
}

// ---- Guardians ----
//
// A ward appoints a guardian on her chain; the guardian acts from its own
// account, by wardgrant and wardrevoke entries on its own chain naming
// the ward. Every node that holds both chains judges an act the same way
// (guardianAct): the act's block must lie inside an appointment's span
// of the guardian's chain — from the position the appointment names to
// the position the ward's removal cuts at, both chosen by the ward's
// node from the guardian's chain it held, so no clock decides them —
// the appointment must give the right, and the block's time must be
// before the appointment's until (the one clock in it, the guardian's:
// SECURITY.md says what that guarantees). An act that counts is the
// ward's own for evaluateClaim, and the reader it makes names the
// guardian (Reader.Guardian), so every node shows who did it. Acts on
// one record and grantee by the ward and by guardians are ordered by the
// time they take effect: their blocks' times, a removed guardian's acts
// no later than the removal (actBefore).

// guardianSpan is one appointment of a guardian on a ward's chain, and
// the removal that closed it, if any.
type guardianSpan struct {
	Guardian  protocol.AccountID
	May       []protocol.GuardianRight
	From      uint64
	Until     int64
	Closed    bool
	Before    uint64
	Appointed EntryRef
	Ended     EntryRef
}

// guardianSpans turns a ward's guardian events, in chain order, into
// spans: an appointment opens one (closing the guardian's open span, if
// any, where the new one starts), a removal closes the guardian's open
// span at its Before. A removal with no open span closes nothing.
func guardianSpans(evs []guardianEvent) []guardianSpan {
	var out []guardianSpan
	open := map[protocol.AccountID]int{}
	for _, ev := range inChainOrder(evs, func(e guardianEvent) EntryRef { return e.Via }) {
		i, isOpen := open[ev.Guardian]
		switch {
		case ev.End && isOpen:
			out[i].Closed, out[i].Before, out[i].Ended = true, ev.Before, ev.Via
			delete(open, ev.Guardian)
		case ev.End:
		default:
			if isOpen {
				out[i].Closed, out[i].Before, out[i].Ended = true, ev.From, ev.Via
			}
			open[ev.Guardian] = len(out)
			out = append(out, guardianSpan{Guardian: ev.Guardian, May: ev.May, From: ev.From, Until: ev.Until, Appointed: ev.Via})
		}
	}
	return out
}

// guardianAct decides whether an act of right at via (an entry on the
// chain of via.Account) counts as the act of the ward whose spans are
// given, and returns the time it takes effect: its block's time, but no
// later than the removal that closed its span (acts before the cut were
// seen by the ward's node before it removed the guardian).
func guardianAct(spans []guardianSpan, via EntryRef, right protocol.GuardianRight) (Decision, int64) {
	var early, removed, noRight, late *guardianSpan
	appointed := false
	for i := range spans {
		s := &spans[i]
		if s.Guardian != via.Account {
			continue
		}
		appointed = true
		switch {
		case via.Seq < s.From:
			early = s
		case s.Closed && via.Seq >= s.Before:
			removed = s
		case !slices.Contains(s.May, right):
			noRight = s
		case s.Until != 0 && via.Time >= s.Until:
			late = s
		default:
			at := via.Time
			if s.Closed && s.Ended.Time < at {
				at = s.Ended.Time
			}
			return allow(RuleGuardianAct, "%s acted (%s) as guardian appointed at %s, in its block %d", via.Account, right, s.Appointed, via.Seq), at
		}
	}
	switch {
	case !appointed:
		return refuse(RuleGuardianNone, "%s is not a guardian of the ward", via.Account), 0
	case noRight != nil:
		return refuse(RuleGuardianRight, "the appointment at %s does not let %s %s (it may %v)", noRight.Appointed, via.Account, right, noRight.May), 0
	case late != nil:
		return refuse(RuleGuardianUntil, "%s's block %d is dated at or after the appointment's end, %s", via.Account, via.Seq, time.UnixMilli(late.Until).UTC().Format(time.RFC3339)), 0
	case removed != nil:
		return refuse(RuleGuardianRemoved, "the ward removed %s at %s, cutting at its block %d; this act is in block %d", via.Account, removed.Ended, removed.Before, via.Seq), 0
	}
	return refuse(RuleGuardianEarly, "%s's block %d comes before its appointment at %s (from block %d)", via.Account, via.Seq, early.Appointed, early.From), 0
}

// actFor decides whether a grant or revocation (verb) at via by someone
// other than claim cl's subject counts as hers: only as an act of her
// guardian (guardianAct) that names her as the ward.
func actFor(f *recordFacts, cl *claimFact, via EntryRef, ward protocol.AccountID, right protocol.GuardianRight, verb string) (Decision, int64) {
	switch ward {
	case "":
		return refuse(RuleChangeNotSubj, "only the subject may %s", verb), 0
	case cl.Subject:
		return guardianAct(f.guardians[cl.Subject], via, right)
	}
	return refuse(RuleGuardianOtherWard, "the act names %s as the ward, not %s, the record's subject", ward, cl.Subject), 0
}

// actBefore orders two acts on one record and grantee: on one chain by
// chain order, across chains by the times they take effect (the chain
// account's ID breaking ties, so every node agrees).
func actBefore(x EntryRef, xAt int64, y EntryRef, yAt int64) bool {
	if x.Account == y.Account {
		return x.before(y)
	}
	if xAt != yAt {
		return xAt < yAt
	}
	return x.Account < y.Account
}

// guardianEntitled says why claim a entitles account id to the chain of
// owner through a guardian's act, or "": owner, a guardian, granted (or
// revoked) id a record of its ward (id must see the act), or id is the
// ward and owner acted on its record.
func guardianEntitled(a *Access, owner, id protocol.AccountID) string {
	byOwner := func(r Reader) bool { return r.Guardian == owner }
	acted := slices.ContainsFunc(a.Readers, byOwner) || slices.ContainsFunc(a.Revoked, byOwner) || slices.ContainsFunc(a.Expired, byOwner)
	switch {
	case !acted:
		return ""
	case a.Subject == id:
		return fmt.Sprintf("%s, guardian of %s, acted on its record", owner, id)
	case slices.ContainsFunc(a.Readers, func(r Reader) bool { return r.Account == id && r.Guardian == owner }),
		slices.ContainsFunc(a.Revoked, func(r Reader) bool { return r.Account == id && r.Guardian == owner }):
		return fmt.Sprintf("%s, guardian of %s, granted (or revoked) %s the record", owner, a.Subject, id)
	}
	return ""
}

// serveChainGuardian decides, where serveChain refused a chain block of
// owner for sharing no record (d), whether a guardian link opens it: the
// peer acts for a guardian of owner (which must see its appointment and
// removal), or for a ward of owner whose appointment owner accepted
// (which must see its guardian's chain to relay to it, and to remove it
// at the right position). guardians lists owner's guardians, as owner's
// chain names them; wards the accounts whose chains appoint owner, each
// with owner's answer to its appointment (guardianConsent). A ward whose
// appointment owner did not accept gets nothing on that ground: anybody
// can appoint anybody, and that must not open the guardian's chain. One
// whose guardian resigned after accepting still gets it, to learn of the
// resignation (else its node would go on relaying to owner and showing
// it as guardian).
func serveChainGuardian(peer peerRoles, owner protocol.AccountID, guardians []protocol.AccountID, wards map[protocol.AccountID]Decision, d Decision) Decision {
	if d.Allow || d.Rule != RuleChainNotShared {
		return d
	}
	for _, id := range peer.acting {
		if slices.Contains(guardians, id) {
			return allow(RuleChainGuardian, "chain block of %s, a ward of %s", owner, id)
		}
	}
	var refused *Decision
	for _, id := range peer.acting {
		c, ok := wards[id]
		switch {
		case ok && c.Allow:
			return allow(RuleChainGuardian, "chain block of %s, a guardian of %s that accepted the appointment", owner, id)
		case ok && c.Rule == RuleGuardianResigned:
			return allow(RuleChainGuardian, "chain block of %s, which resigned as guardian of %s: its node is to learn of it (%s)", owner, id, c.Reason)
		case ok && refused == nil:
			refused = &c
		}
	}
	if refused != nil {
		return refuse(refused.Rule, "chain block of %s, appointed guardian of the peer's account but not serving it on that ground: %s", owner, refused.Reason)
	}
	return d
}

// guardianConsent decides whether the guardian of spans[i] consents to
// that appointment, by consents, the guardian's answers (wardaccept,
// warddecline) to appointments of this ward, in its chain order. The
// latest answer naming the appointment's block stands. A decline is a
// resignation when the guardian consented at any point before it (an
// earlier accept of this appointment, or one carried to it before its
// first answer), however many declines follow: the ward's node is then
// still served the guardian's chain, and a second decline must not stop
// that before the ward learns of the first. With no answer, a
// re-appointment that replaced an accepted span of the same guardian
// (not a removal and a new appointment) keeps that acceptance when it
// gives no more rights, ends no later and starts no earlier in the
// guardian's chain: narrowing needs no new accept, widening does.
func guardianConsent(spans []guardianSpan, i int, consents []consentEvent) Decision {
	s := spans[i]
	var last *consentEvent // the guardian's last answer
	first, accepted := -1, false
	for j := range consents {
		if consents[j].Appointment != s.Appointed.Block {
			continue
		}
		if first < 0 {
			first = j
		}
		if last != nil && !last.Decline {
			accepted = true
		}
		last = &consents[j]
	}
	switch {
	case last == nil:
		return carriedConsent(spans, i, consents)
	case !last.Decline:
		return allow(RuleGuardianAccepted, "%s accepted the appointment at %s (in its block %d)", s.Guardian, s.Appointed, last.Via.Seq)
	case accepted, carriedConsent(spans, i, consents[:first]).Allow:
		return refuse(RuleGuardianResigned, "%s resigned the appointment at %s (declined it in its block %d, after accepting)", s.Guardian, s.Appointed, last.Via.Seq)
	}
	return refuse(RuleGuardianDeclined, "%s declined the appointment at %s (in its block %d)", s.Guardian, s.Appointed, last.Via.Seq)
}

// carriedConsent decides the consent to spans[i], which its guardian has
// not answered (by consents): an acceptance carried from the span it
// narrows, or none.
func carriedConsent(spans []guardianSpan, i int, consents []consentEvent) Decision {
	s := spans[i]
	for j := i - 1; j >= 0; j-- {
		p := spans[j]
		if p.Guardian != s.Guardian || !p.Closed || p.Ended != s.Appointed {
			continue
		}
		prev := guardianConsent(spans, j, consents)
		switch {
		case !prev.Allow:
		case !narrower(s, p):
			return refuse(RuleGuardianWidened, "the appointment at %s gives %s more than the one it accepted (may %v until %s from its block %d, was %v until %s from block %d): it waits for a new accept",
				s.Appointed, s.Guardian, s.May, untilText(s.Until), s.From, p.May, untilText(p.Until), p.From)
		default:
			return allow(RuleGuardianCarried, "the appointment at %s narrows one %s accepted: %s", s.Appointed, s.Guardian, prev.Reason)
		}
		break
	}
	return refuse(RuleGuardianNotAccepted, "%s has not accepted the appointment at %s ('blockmrs guardian accept' on its node)", s.Guardian, s.Appointed)
}

// narrower tells whether appointment s gives no right p does not, ends
// no later than p and starts no earlier in the guardian's chain than p
// (an earlier From would make acts in blocks p left out count).
func narrower(s, p guardianSpan) bool {
	if s.From < p.From {
		return false
	}
	for _, r := range s.May {
		if !slices.Contains(p.May, r) {
			return false
		}
	}
	return p.Until == 0 || (s.Until != 0 && s.Until <= p.Until)
}

func untilText(ms int64) string {
	if ms == 0 {
		return "no end"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

// PairFacts are what PairJoin decides on: the node's pending pairing
// offer and the proof a joining peer sent.
type PairFacts struct {
	// Offered is true when the node holds an offer.
	Offered bool
	// Expires is when the offer ends.
	Expires time.Time
	// Used is true once a device joined with the offer.
	Used bool
	// Failures counts the wrong proofs tried against the offer before
	// this one; MaxFailures is how many it takes to spend it (it must be
	// set: with 0 every offer is spent).
	Failures, MaxFailures int
	// ProofOK is true when the proof matches the offer's secret over the
	// offering and the joining peer IDs (compared in constant time by the
	// caller).
	ProofOK bool
}

// PairJoin decides whether a peer that sent a pairing proof is given the
// offered account's keys and declared its device: only with a live,
// unused offer, while fewer than MaxFailures wrong proofs were tried,
// and a matching proof. Spent and expired offers are refused before the
// proof is looked at, so a late right code cannot revive them.
func PairJoin(f PairFacts, now time.Time) Decision {
	switch {
	case !f.Offered:
		return refuse(RulePairNoOffer, "this node offers no pairing now: run 'blockmrs device pair' on it")
	case f.Used:
		return refuse(RulePairSpent, "the pairing code was used already: ask for a new one")
	case f.Failures >= f.MaxFailures: // a limit of 0 (unset) fails closed
		return refuse(RulePairSpent, "%d wrong codes were tried against this offer: ask for a new one", f.Failures)
	case !now.Before(f.Expires):
		return refuse(RulePairExpired, "the pairing code expired at %s: ask for a new one", f.Expires.UTC().Format(time.RFC3339))
	case !f.ProofOK:
		return refuse(RulePairWrongCode, "wrong pairing code")
	}
	return allow(RulePairAccepted, "the pairing code matches a live offer")
}

// ServeRotations decides whether a peer is given the rotation files of
// an account (rotate.go): only for an account of this repo, and only to a
// node the account's chain declares a device of it. The files open only
// with the account's identities; this keeps even that ciphertext to the
// account's own devices.
func ServeRotations(local, device bool) Decision {
	if local && device {
		return allow(RuleRotationsOwn, "the peer is a declared device of the account")
	}
	if !local {
		return refuse(RuleRotationsNone, "the account is not one of this node's")
	}
	return refuse(RuleRotationsNone, "the peer is not a declared device of the account")
}

// Signing-key succession and recovery (succession.go, recovery.go,
// PROTOCOL.md §5.14–5.15). Which key may sign an account's next block.
const (
	RuleSignerCurrent    Rule = "chain/signer"         // a block signed by the chain's signing key as of the block before
	RuleSignerRetired    Rule = "chain/signer-retired" // any other signer (a retired key, a key never named) is refused
	RuleSuccessionSigned Rule = "succession/signed"    // a succession in a block the current signing key signed
	RuleSuccessionReused Rule = "succession/reused"    // a succession to the account key, the current signing key or a retired key is refused
	RuleRecoveryApproved Rule = "recovery/approved"    // a succession signed by the key it names, approved by at least the threshold of distinct contacts of the live setup
	RuleRecoveryNoSetup  Rule = "recovery/no-setup"    // a recovery on a chain with no live recovery setup is refused
	RuleRecoveryTooFew   Rule = "recovery/too-few"     // fewer valid approvals than the threshold (strangers, duplicates, other keys, requests or setups count for nothing)
	RuleApprovalContact  Rule = "recovery/contact"     // a contact of the live setup may approve a recovery request
	RuleApprovalStranger Rule = "recovery/not-contact" // nobody else may
	RuleChainRecovery    Rule = "serve/chain-recovery" // a chain block, to a device of a recovery contact the chain's live setup names (it must hold the chain to approve)

	RuleApprovalSigner        Rule = "recovery/approval-signer"         // an approval signed by the signing key the verifier's copy of the contact's chain names now (the account key when it names no successor, or when the verifier holds no chain of the contact); in a replay of a block admitted before, by a key that chain named
	RuleApprovalSignerRetired Rule = "recovery/approval-signer-retired" // an approval signed by a key the contact's chain retired (when the block is admitted), a key it never named, or a successor key of a contact whose chain the verifier does not hold, counts for nothing

	RuleForkRecovery     Rule = "succession/fork-recovery"      // two blocks at one seq, the arriving one a valid recovery succession and the held one not: the node switches to the recovery's branch; the held branch is kept as evidence, superseded
	RuleForkRecoveryHeld Rule = "succession/fork-recovery-held" // two blocks at one seq, the held one a valid recovery succession and the arriving one not: the node keeps its branch; the arriving one is kept as evidence, superseded
	RuleForkRefused      Rule = "succession/fork"               // two blocks at one seq with no valid recovery succession, or one on each side: a fork, refused, evidence kept
	RuleForkUnsigned     Rule = "succession/fork-unsigned"      // an arriving block at a held seq that the chain as of the block before does not let its signer sign (a retired key, a stranger's, a "recovery" short of approvals) is refused as invalid, and kept as no fork evidence: it says nothing about the account
	RuleForkReplayed     Rule = "succession/fork-replayed"      // two blocks at one seq where a recovery answers the same request as a recovery on the other branch (its approvals copied to another seq): it counts on neither side; unless the other side holds a recovery of its own, a fork, refused, evidence kept
)

// contactSigning is what a verifier holds of a recovery contact's chain:
// whether it holds it, its signing key now and the keys it retired.
type contactSigning struct {
	Held    bool
	Current []byte
	Retired [][]byte
}

// approvalSigner decides whether an approval by the contact with key
// contact, signed by key signer, speaks for the contact, c being the
// verifier's copy of the contact's chain. At admission (replay false) only
// the signing key that copy names now counts: a key the contact retired
// (a lost laptop's, a thief's) approves nothing. In a replay of a block
// admitted before (verify, a fork's branch rebuilt), a key the chain
// retired since counts too: a contact's later succession does not undo a
// recovery it approved.
func approvalSigner(contact []byte, c contactSigning, signer []byte, replay bool) Decision {
	who := protocol.AccountIDFromKey(contact).Short()
	if !c.Held {
		if bytes.Equal(signer, contact) {
			return allow(RuleApprovalSigner, "approval signed by %s's account key (its chain is not held here)", who)
		}
		return refuse(RuleApprovalSignerRetired, "approval by %s signed by key %x, and this node holds no chain of %s naming it", who, signer[:4], who)
	}
	if bytes.Equal(signer, c.Current) {
		return allow(RuleApprovalSigner, "approval signed by the signing key %s's chain names now", who)
	}
	named := bytes.Equal(signer, contact) || slices.ContainsFunc(c.Retired, func(k []byte) bool { return bytes.Equal(k, signer) })
	if named && replay {
		return allow(RuleApprovalSigner, "approval of an admitted block, signed by a key %s's chain named then", who)
	}
	if named {
		return refuse(RuleApprovalSignerRetired, "approval by %s signed by key %x, which %s's chain retired", who, signer[:4], who)
	}
	return refuse(RuleApprovalSignerRetired, "approval by %s signed by key %x, which %s's chain never named", who, signer[:4], who)
}

// forkFacts are what decides a fork: the two blocks at the seq where two
// branches of one chain part (the one held, the one arriving), and whether
// each is a recovery succession valid on the chain as of the block before
// (blockSigner allows it by RuleRecoveryApproved).
type forkFacts struct {
	Account         protocol.AccountID
	Seq             uint64
	HeldRecovery    bool
	OfferedRecovery bool
	// HeldReplayed and OfferedReplayed: that side's recovery answers the
	// same request as a recovery on the other branch. An approval names
	// the account, the new key, the request and the setup, not the block,
	// so whoever holds a recovered key can copy the recovery to a lower
	// seq where the key is not named yet; both branches then carry the
	// same recovery, and it settles nothing between them.
	HeldReplayed    bool
	OfferedReplayed bool
	// OfferedUnsigned: the arriving block is signed neither by the key
	// the chain names as of the block before nor as a valid recovery.
	OfferedUnsigned bool
}

// forkChoice decides which branch of a forked chain a node follows. A
// recovery succession is the account's owner taking the chain back from
// keys that were lost or stolen, with the threshold of its recovery
// contacts vouching: the branch it starts wins over one the replaced key
// signs at the same seq, on every node and whichever arrived first. Any
// other fork (no recovery, or a recovery on each side) is refused as
// evidence of misbehaviour.
func forkChoice(f forkFacts) Decision {
	held, offered := f.HeldRecovery && !f.HeldReplayed, f.OfferedRecovery && !f.OfferedReplayed
	switch {
	case f.OfferedUnsigned:
		return refuse(RuleForkUnsigned, "the arriving block is signed by a key the chain does not let sign there (retired, never named, or a recovery without the approvals it needs): an invalid block, not a fork")
	case offered && !held:
		return allow(RuleForkRecovery, "chain of %s, block %d: the arriving branch starts with an approved recovery; the held branch, signed by the key it replaced, is superseded", f.Account.Short(), f.Seq)
	case held && !offered:
		return allow(RuleForkRecoveryHeld, "chain of %s, block %d: the held branch starts with an approved recovery; the arriving branch, signed by the key it replaced, is superseded", f.Account.Short(), f.Seq)
	case held:
		return refuse(RuleForkRefused, "chain of %s, block %d: two approved recoveries compete (a fork)", f.Account.Short(), f.Seq)
	case f.HeldReplayed || f.OfferedReplayed:
		return refuse(RuleForkReplayed, "chain of %s, block %d: the recovery there answers the same request as a recovery on the other branch (its approvals copied to another block), so it settles nothing: a fork", f.Account.Short(), f.Seq)
	}
	return refuse(RuleForkRefused, "chain of %s, block %d: two different blocks (a fork, and neither is a recovery)", f.Account.Short(), f.Seq)
}

// signerFacts are what decides who may sign an account's next block: the
// account key, the signing key as of the block before, the keys retired
// and the live recovery setup.
type signerFacts struct {
	Account  []byte
	Current  []byte
	Retired  [][]byte
	Recovery *recoveryFacts
	// Contacts holds, by contact key, what the verifier holds of the
	// chains of the contacts whose approvals the block carries; a contact
	// missing is one whose chain is not held. Replay is set when the
	// block was admitted before (approvalSigner).
	Contacts map[string]contactSigning
	Replay   bool
}

// blockSigner decides whether block b may follow on the chain described
// by f: signed by the current signing key, or a recovery succession
// signed by the successor it names with enough approvals.
func blockSigner(f signerFacts, b *protocol.Block) Decision {
	signer := b.SignerKey()
	s := b.Succession()
	if s != nil && (bytes.Equal(s.Key, f.Account) || bytes.Equal(s.Key, f.Current) || slices.ContainsFunc(f.Retired, func(k []byte) bool { return bytes.Equal(k, s.Key) })) {
		return refuse(RuleSuccessionReused, "block %d names key %x as successor, the account key, the key that signs now or one it retired", b.Seq, s.Key[:4])
	}
	if bytes.Equal(signer, f.Current) {
		if s != nil {
			return allow(RuleSuccessionSigned, "block %d, signed by the current signing key, names its successor", b.Seq)
		}
		return allow(RuleSignerCurrent, "block %d is signed by the chain's signing key", b.Seq)
	}
	if s == nil || !bytes.Equal(s.Key, signer) || len(s.Approvals) == 0 {
		return refuse(RuleSignerRetired, "block %d is signed by key %x, not the chain's signing key %x (retired or never named)", b.Seq, signer[:4], f.Current[:4])
	}
	return recoveryApproved(f.Account, f.Recovery, s, f.Contacts, f.Replay)
}

// recoveryApproved decides whether s, a succession by recovery on the
// chain of account, carries approvals from at least the threshold of
// distinct contacts of the live setup rec, each signed by the contact
// for this account, this successor key and this request, under rec, by
// a key that speaks for the contact (approvalSigner, contacts and replay
// as there). The account's own approval never counts, even where a setup
// names it: its key is the one a recovery replaces (lost, or a thief's).
func recoveryApproved(account []byte, rec *recoveryFacts, s *protocol.Succession, contacts map[string]contactSigning, replay bool) Decision {
	if rec == nil || rec.Threshold == 0 {
		return refuse(RuleRecoveryNoSetup, "%s names no recovery contacts: a lost key cannot be replaced", protocol.AccountIDFromKey(account))
	}
	counted := map[string]bool{}
	var why []string
	for i := range s.Approvals {
		a := &s.Approvals[i]
		switch {
		case bytes.Equal(a.Contact, account):
			why = append(why, "the account approved its own recovery (counted for nothing)")
		case !rec.has(a.Contact):
			why = append(why, fmt.Sprintf("%s is not a recovery contact", protocol.AccountIDFromKey(a.Contact).Short()))
		case a.Setup.Cid.String() != rec.Via.Block:
			why = append(why, fmt.Sprintf("%s approved under another recovery setup", protocol.AccountIDFromKey(a.Contact).Short()))
		case counted[string(a.Contact)]:
			why = append(why, fmt.Sprintf("%s approved twice (counted once)", protocol.AccountIDFromKey(a.Contact).Short()))
		default:
			if d := approvalSigner(a.Contact, contacts[string(a.Contact)], a.SignerKey(), replay); !d.Allow {
				why = append(why, d.Reason)
				continue
			}
			if err := a.VerifyFor(account, s.Key, s.Request); err != nil {
				why = append(why, err.Error())
				continue
			}
			counted[string(a.Contact)] = true
		}
	}
	if uint64(len(counted)) < rec.Threshold {
		reason := fmt.Sprintf("%d of the %d approvals needed", len(counted), rec.Threshold)
		if len(why) > 0 {
			reason += " (" + strings.Join(why, "; ") + ")"
		}
		return refuse(RuleRecoveryTooFew, "recovery of %s: %s", protocol.AccountIDFromKey(account), reason)
	}
	return allow(RuleRecoveryApproved, "%d recovery contacts of %s approved the new key (threshold %d)", len(counted), protocol.AccountIDFromKey(account), rec.Threshold)
}

// mayApproveRecovery decides whether the account with key contact may
// approve a recovery of the chain whose live setup is rec.
func mayApproveRecovery(rec *recoveryFacts, contact []byte) Decision {
	if rec == nil || rec.Threshold == 0 {
		return refuse(RuleRecoveryNoSetup, "the account names no recovery contacts")
	}
	if rec.Via.Account == protocol.AccountIDFromKey(contact) {
		return refuse(RuleApprovalStranger, "an account cannot approve its own recovery")
	}
	if !rec.has(contact) {
		return refuse(RuleApprovalStranger, "%s is not one of the account's recovery contacts", protocol.AccountIDFromKey(contact))
	}
	return allow(RuleApprovalContact, "%s is a recovery contact (setup %s)", protocol.AccountIDFromKey(contact), rec.Via)
}

// serveChainToContacts decides, where serveChain refused (d), whether a
// chain block of owner goes to a peer acting for one of the recovery
// contacts owner's live setup rec names: each must hold the chain (its
// setup and its share) to approve a recovery.
func serveChainToContacts(d Decision, peer peerRoles, owner protocol.AccountID, rec *recoveryFacts) Decision {
	if rec == nil {
		return d
	}
	for _, id := range peer.acting {
		if rec.has(keyOf(id)) {
			return allow(RuleChainRecovery, "chain block of %s, which names %s as a recovery contact", owner, id)
		}
	}
	return d
}

// Recovery requests and responses over the network (recovery_inbox.go,
// node/recovery, PROTOCOL.md §10, "Recovery requests"): which requests a
// contact's node keeps in its inbox, and which responses a recovering
// node adds.
const (
	RuleRecoveryInboxKeep     Rule = "recovery/inbox-keep"        // a request for an account whose live setup names a local account of this node as a contact, fresh, not denied here, within the inbox's bounds
	RuleRecoveryInboxStranger Rule = "recovery/inbox-not-contact" // a request for an account with no live setup naming a local account (or a chain this node does not hold) is refused
	RuleRecoveryInboxFull     Rule = "recovery/inbox-full"        // more than MaxRecoveryInboxPerAccount requests for one account, or MaxRecoveryInbox in all, are refused
	RuleRecoveryInboxReplay   Rule = "recovery/inbox-replay"      // a request denied here (or naming the new key of one denied here), or older than MaxRecoveryRequestAge (or from the future), is refused
	RuleRecoveryResponse      Rule = "recovery/response"          // a response counts when it answers this very request, by a contact of the live setup, under that setup, with a valid approval signature
	RuleRecoveryResponseOther Rule = "recovery/response-other"    // any other response (another request, a stranger, another setup, a bad signature) is refused
)

// recoveryInboxFacts are what a contact's node knows as a recovery
// request arrives.
type recoveryInboxFacts struct {
	// Recovery is the account's live setup in this node's copy of its
	// chain; nil when it has none or the chain is unknown here.
	Recovery *recoveryFacts
	// Local are the keys of this node's local accounts.
	Local [][]byte
	// Held and HeldForAccount count the requests in the inbox, in all
	// and for this account, not counting this one.
	Held, HeldForAccount int
	// Known: this very request is in the inbox already (a redelivery).
	Known bool
	// Denied: a contact here denied this very request. DeniedKey: a
	// contact here denied a request naming the same new key (this one
	// re-signed with another time, say).
	Denied, DeniedKey bool
	// Age is now minus the request's time.
	Age time.Duration
}

// mayKeepRecoveryRequest decides whether a contact's node keeps a
// recovery request it received in its inbox. A redelivery of a request
// kept already is kept (nothing changes).
func mayKeepRecoveryRequest(f recoveryInboxFacts) Decision {
	if f.Recovery == nil || f.Recovery.Threshold == 0 || !slices.ContainsFunc(f.Local, func(k []byte) bool { return mayApproveRecovery(f.Recovery, k).Allow }) {
		return refuse(RuleRecoveryInboxStranger, "the account names no account of this node as a recovery contact")
	}
	if f.Denied {
		return refuse(RuleRecoveryInboxReplay, "this request was denied here")
	}
	if f.DeniedKey {
		return refuse(RuleRecoveryInboxReplay, "a request for this new key was denied here: the recovering device starts again with a new key")
	}
	if f.Age > MaxRecoveryRequestAge || f.Age < -maxRecoveryClockSkew {
		return refuse(RuleRecoveryInboxReplay, "the request is dated %s from now, outside the %s it may be kept", (-f.Age).Round(time.Minute), MaxRecoveryRequestAge)
	}
	if !f.Known && (f.HeldForAccount >= MaxRecoveryInboxPerAccount || f.Held >= MaxRecoveryInbox) {
		return refuse(RuleRecoveryInboxFull, "the inbox holds %d recovery requests for the account (at most %d) and %d in all (at most %d): deny some first", f.HeldForAccount, MaxRecoveryInboxPerAccount, f.Held, MaxRecoveryInbox)
	}
	return allow(RuleRecoveryInboxKeep, "a recovery request for %s, which names an account here as a recovery contact", f.Recovery.Via.Account)
}

// recoveryResponseCounts decides whether resp answers the recovery of
// account (whose live setup is rec) by request reqID to the new key.
func recoveryResponseCounts(account []byte, rec *recoveryFacts, reqID, key []byte, resp *protocol.RecoveryResponse, contact contactSigning) Decision {
	who := protocol.AccountIDFromKey(resp.Approval.Contact)
	if d := approvalSigner(resp.Approval.Contact, contact, resp.Approval.SignerKey(), false); !d.Allow {
		return refuse(RuleRecoveryResponseOther, "%s", d.Reason)
	}
	switch {
	case !bytes.Equal(resp.Request, reqID):
		return refuse(RuleRecoveryResponseOther, "the response from %s answers another request", who)
	case !mayApproveRecovery(rec, resp.Approval.Contact).Allow:
		return refuse(RuleRecoveryResponseOther, "%s is not a recovery contact of %s", who, protocol.AccountIDFromKey(account))
	case resp.Approval.Setup.Cid.String() != rec.Via.Block:
		return refuse(RuleRecoveryResponseOther, "%s approved under another recovery setup", who)
	}
	if err := resp.Approval.VerifyFor(account, key, reqID); err != nil {
		return refuse(RuleRecoveryResponseOther, "%v", err)
	}
	return allow(RuleRecoveryResponse, "%s approved this request under the live setup", who)
}

// Rules of who may sign an access request or answer for an account
// (PROTOCOL.md §10.1).
const (
	RuleMessageSigner  Rule = "message/signer"         // signed by the signing key the verifier's copy of the account's chain names now (the account key when that copy names no successor, or when the verifier holds no chain and the account key signed)
	RuleMessageRetired Rule = "message/signer-retired" // signed by a key that chain retired, or one it never named, is refused
	RuleMessageNoChain Rule = "message/no-chain"       // signed by a successor key of an account whose chain the verifier does not hold is refused
)

// messageSigner decides whether a request or answer for the account
// with key account, signed by key signer, speaks for it. held tells
// whether the verifier holds the account's chain, f describes it. Only
// the current signing key counts, whenever the message was signed: one
// signed before a succession by the key it retired is refused.
func messageSigner(held bool, f signerFacts, account, signer []byte) Decision {
	who := protocol.AccountIDFromKey(account)
	if !held {
		if bytes.Equal(signer, account) {
			return allow(RuleMessageSigner, "signed by %s's account key (its chain is not held here)", who)
		}
		return refuse(RuleMessageNoChain, "signed by key %x for %s, whose chain this node does not hold: sync the chain or add %s as a contact, then retry", signer[:4], who, who)
	}
	if bytes.Equal(signer, f.Current) {
		return allow(RuleMessageSigner, "signed by the signing key %s's chain names now", who)
	}
	if bytes.Equal(signer, account) || slices.ContainsFunc(f.Retired, func(k []byte) bool { return bytes.Equal(k, signer) }) {
		return refuse(RuleMessageRetired, "signed by key %x, which %s's chain retired: the device that signed no longer acts for the account", signer[:4], who)
	}
	return refuse(RuleMessageRetired, "signed by key %x, which %s's chain never named (this node's copy may be behind: sync the chain and retry)", signer[:4], who)
}

// Rules of handing a minor's account over to the grown-up's own node
// (guardian handover, keyshare/handover.go).
const (
	RuleHandoverWard    Rule = "handover/ward"     // a ward whose keys this repo holds, that appointed the acting account guardian (not removed it), whose appointment the acting account accepted (guardianConsent), and that declares this node its device
	RuleHandoverNotWard Rule = "handover/not-ward" // any other account: not of this repo, the acting account itself, not its ward, or not acting through this node
)

// HandoverFacts are what Handover decides on.
type HandoverFacts struct {
	// Local is true when the ward's keys are in this repo.
	Local bool
	// Self is true when the ward is the acting account.
	Self bool
	// Appointed is true when the ward's chain appoints the acting account
	// guardian; Removed when it removed it since (an appointment ended by
	// its until still counts: coming of age is when hand-over happens).
	Appointed, Removed bool
	// Consent is the acting account's answer to its latest appointment
	// (guardianConsent): the hand-over is a guardian's act, and a
	// guardian's node acts for a ward only once it took the appointment.
	Consent Decision
	// Device is true when the ward's chain declares this node its device.
	Device bool
}

// Handover decides whether the acting account may hand a ward's account
// over (offer its keys to the grown-up's node, then forget them): only a
// ward made for it here, as guardian create makes one (it accepts the
// appointment too).
func Handover(f HandoverFacts) Decision {
	switch {
	case f.Self:
		return refuse(RuleHandoverNotWard, "an account cannot hand itself over: to add a device of your own, run 'blockmrs device pair'")
	case !f.Local:
		return refuse(RuleHandoverNotWard, "the account's keys are not in this repo: only a ward made here with 'blockmrs guardian create' can be handed over")
	case !f.Appointed:
		return refuse(RuleHandoverNotWard, "the account never appointed the acting account guardian: it is not its ward (to add a device, run 'blockmrs device pair')")
	case f.Removed:
		return refuse(RuleHandoverNotWard, "the account removed the acting account as guardian: it is no longer its ward")
	case !f.Consent.Allow:
		return refuse(RuleHandoverNotWard, "the acting account has not taken the appointment: %s", f.Consent.Reason)
	case !f.Device:
		return refuse(RuleHandoverNotWard, "the account does not declare this node its device: hand it over from the node that acts for it")
	}
	return allow(RuleHandoverWard, "a ward of the acting account, acting through this node")
}

// rekeyScopeRecord decides whether ending subject's standing grant scope
// to from with re-key (Repo.NewScopeRekeyJob) re-keys the record whose
// access state, under the claim that counts for subject, is a, judged
// once the unscope entry is on the chain. Only a record of subject's
// that from read under scope and lost by its end is re-keyed: a record
// from still reads, by a grant of the record itself or under another
// live standing grant, stays granted (re-keying it would wrap the new
// key for from again), and must be revoked by CID to be re-keyed.
func rekeyScopeRecord(a *Access, subject, from protocol.AccountID, scope string) Decision {
	if a == nil || !a.Known || a.Subject != subject {
		return refuse(RuleRekeyScopeNot, "the record is not one of %s's: only the subject's own records are re-keyed", subject)
	}
	if rd, ok := a.Reader(from); ok {
		if rd.Scope == "" {
			return refuse(RuleRekeyScopeNot, "%s still reads %s by a grant of the record itself (%s): revoke it by CID with re-key", from, a.Record, rd.Via)
		}
		return refuse(RuleRekeyScopeNot, "%s still reads %s under the live standing grant %s", from, a.Record, rd.Scope)
	}
	if slices.ContainsFunc(a.Revoked, func(r Reader) bool { return r.Account == from && r.Scope == scope && r.rule == RuleReadScopeEnded }) {
		return allow(RuleRekeyScope, "%s read %s under the standing grant %s, which %s ended", from, a.Record, scope, subject)
	}
	return refuse(RuleRekeyScopeNot, "%s did not lose %s by the end of the standing grant %s", from, a.Record, scope)
}

// Rules of who may answer an access request (PROTOCOL.md "Access
// requests"): checked by the requester's node (outbox) and by every node
// holding the request in its inbox, the asked account's own and its
// guardians', when another of them delivers the answer.
const (
	RuleAnswerAsked    Rule = "answer/asked"     // signed by the account the request asked, to the requester
	RuleAnswerGuardian Rule = "answer/guardian"  // signed by a guardian of the asked account who may approve now (guardianAct), to the requester
	RuleAnswerNotAsked Rule = "answer/not-asked" // signed by anyone else (a stranger, a guardian without approve or past its until)
	RuleAnswerRemoved  Rule = "answer/removed"   // signed by a guardian the asked account removed (and did not appoint again): whatever the verifier holds of the guardian's chain
	RuleAnswerOtherTo  Rule = "answer/other-to"  // addressed to another account than the one that asked
)

// answerFacts are what answerSigner decides on: the request held (Asked,
// Requester), the answer (Signer, To), the asked account's guardian spans
// as the verifier's chains say, and where the signer's next act would be
// (its next chain block, at the verifier's time).
type answerFacts struct {
	Asked, Requester protocol.AccountID
	Signer, To       protocol.AccountID
	Spans            []guardianSpan
	SignerNext       EntryRef
}

// answerSigner decides whether an answer speaks for the account a
// request asked: its own, or that of a guardian who may approve for it
// now (the answer is an act of approve, judged as if in the guardian's
// next block: a guardian stripped of approve answers no more, even
// requests it received before). Only open appointments count: a removal
// cuts at the guardian's chain as the ward's node held it, and a
// verifier holding less of that chain would place the guardian's next
// block before the cut, so a removed guardian is refused outright.
func answerSigner(f answerFacts) Decision {
	if f.To != f.Requester {
		return refuse(RuleAnswerOtherTo, "the answer is addressed to %s, but %s asked: it answers another request", f.To, f.Requester)
	}
	if f.Signer == f.Asked {
		return allow(RuleAnswerAsked, "signed by %s, the account asked", f.Asked)
	}
	var open []guardianSpan
	removed := false
	for _, s := range f.Spans {
		switch {
		case s.Guardian != f.Signer:
		case s.Closed:
			removed = true
		default:
			open = append(open, s)
		}
	}
	if removed && len(open) == 0 {
		return refuse(RuleAnswerRemoved, "signed by %s, whom %s removed as guardian: it answers for %s no more", f.Signer, f.Asked, f.Asked)
	}
	if d, _ := guardianAct(open, f.SignerNext, protocol.RightApprove); !d.Allow {
		return refuse(RuleAnswerNotAsked, "signed by %s, but the request asked %s and %s may not answer for it: %s", f.Signer, f.Asked, f.Signer, d.Reason)
	}
	return allow(RuleAnswerGuardian, "signed by %s, a guardian of %s who may approve its requests", f.Signer, f.Asked)
}

// ---------------------------------------------------------------------------
// Recovery exports and the address hints they carry (recovery_export.go).

// Rules of recovery exports.
const (
	RuleRecoveryExport       Rule = "recovery/export"             // a recovery export of an account whose live setup names a local account: its chain, the local contacts' own chains, the first block of each other contact the setup names (held here), and where this node last reached those contacts' nodes
	RuleRecoveryExportRefuse Rule = "recovery/export-not-contact" // no export of an account with no live setup naming a local account
	RuleAddrsHinted          Rule = "addrs/hinted"                // an imported address hint is kept for a node a chain this repo knows declares, when the book holds no address for it
	RuleAddrsHintRefused     Rule = "addrs/hint-refused"          // a hint for an undeclared node, or one that would replace a kept address, is left
)

// exportRecovery decides whether this repo hands out a recovery export
// of an account with live setup (nil: none) to its owner: only when the
// setup names one of this repo's local accounts (keys), and then only
// the chains and addresses RuleRecoveryExport lists: the exporter's own
// chain, first blocks of the other contacts (their profiles and the
// nodes declared there), never their later blocks, records or keys.
func exportRecovery(setup *recoveryFacts, local [][]byte) Decision {
	if setup != nil {
		for _, c := range setup.Contacts {
			if slices.ContainsFunc(local, func(l []byte) bool { return bytes.Equal(l, c) }) {
				return allow(RuleRecoveryExport, "the account's live recovery setup names a local account of this repo")
			}
		}
	}
	return refuse(RuleRecoveryExportRefuse, "the account names no account of this repo as a recovery contact")
}

// keepHintedAddrs decides whether an address hint from an imported file
// goes into the address book: only for a node a known chain declares,
// and never over an address the book keeps (one the node reached itself
// or was given before): a file can point the node at a contact's node it
// cannot find, not move one it can.
func keepHintedAddrs(peer peerRoles, kept bool) Decision {
	if !peer.known() {
		return refuse(RuleAddrsHintRefused, "peer is no declared device or replica of any account this repo knows")
	}
	if kept {
		return refuse(RuleAddrsHintRefused, "the address book keeps where the peer was reached: a hint does not replace it")
	}
	return allow(RuleAddrsHinted, "peer is a declared node of an account this repo knows, with no kept address")
}
