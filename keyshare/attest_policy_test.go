package keyshare

// The attestation rules' rows of the policy table (TestPolicyTable), and
// the pure role decision's own tests: paths, loops, length, expiry.

import (
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// Accounts of the attestation cases: auth a trusted authority, rogue an
// authority nobody trusts, clinic a clinic, cln a clinician, region a
// regional authority under auth.
var (
	auth   = testAccount(20)
	rogue  = testAccount(21)
	clinic = testAccount(22)
	cln    = testAccount(23)
	region = testAccount(24)
)

// roles builds role facts.
type roles struct{ f roleFacts }

func newRoles() *roles {
	return &roles{f: roleFacts{
		declared: map[protocol.AccountID]protocol.Role{},
		attests:  map[protocol.AccountID][]attestEvent{},
		trusted:  map[protocol.AccountID]bool{},
	}}
}

func (x *roles) declare(id protocol.AccountID, r protocol.Role) *roles {
	x.f.declared[id] = r
	return x
}

func (x *roles) trust(ids ...protocol.AccountID) *roles {
	for _, id := range ids {
		x.f.trusted[id] = true
	}
	return x
}

// attest records by's latest word about to: an attestation of role
// (expiring at expires, 0 for never), or a withdrawal when role is "".
func (x *roles) attest(by, to protocol.AccountID, role protocol.Role, expires int64) *roles {
	ev := attestEvent{Attester: by, To: to, Role: role, Expires: expires, End: role == "", Via: ref(by, 1)}
	x.f.attests[to] = append(x.f.attests[to], ev)
	return x
}

func (x *roles) edit(fn func(*roles)) *roles { fn(x); return x }

// standard is the verified setup: auth (trusted) → clinic → cln.
func standard() *roles {
	return newRoles().
		declare(auth, protocol.RoleAuthority).declare(clinic, protocol.RoleClinic).declare(cln, protocol.RoleClinician).
		trust(auth).
		attest(auth, clinic, protocol.RoleClinic, 0).attest(clinic, cln, protocol.RoleClinician, 0)
}

func (x *roles) verify(id protocol.AccountID, role protocol.Role) RoleProof {
	return verifyRole(id, role, &x.f, tNow)
}

// decision turns a proof into a Decision for the table.
func (p RoleProof) decision() Decision {
	return Decision{Allow: p.Verified, Rule: p.Rule, Reason: p.Why}
}

func attestPolicyCases() []policyCase {
	clinician := func(x *roles) Decision { return x.verify(cln, protocol.RoleClinician).decision() }
	return []policyCase{
		{RuleRoleTrusted, true,
			func(t *testing.T) Decision { return standard().verify(auth, protocol.RoleAuthority).decision() },
			func(t *testing.T) Decision {
				return standard().edit(func(x *roles) { x.f.trusted = nil }).verify(auth, protocol.RoleAuthority).decision()
			}},
		{RuleRoleVerified, true,
			func(t *testing.T) Decision { return clinician(standard()) },
			func(t *testing.T) Decision {
				// the clinic withdrew the attestation
				return clinician(standard().edit(func(x *roles) { x.f.attests[cln] = nil }).attest(clinic, cln, "", 0))
			}},
		{RuleRoleDeclared, false,
			func(t *testing.T) Decision {
				// mal calls himself a clinician; nobody attests him
				return standard().declare(mal, protocol.RoleClinician).verify(mal, protocol.RoleClinician).decision()
			},
			func(t *testing.T) Decision { return clinician(standard()) }},
		{RuleRoleMismatch, false,
			func(t *testing.T) Decision {
				// attested as a clinician, but declares patient
				return clinician(standard().declare(cln, protocol.RolePatient))
			},
			func(t *testing.T) Decision { return clinician(standard()) }},
		{RuleRoleAttester, false,
			func(t *testing.T) Decision {
				// a patient (mal) "attests" cln as a clinician
				x := standard().declare(mal, protocol.RolePatient)
				x.f.attests[cln] = nil
				return clinician(x.attest(mal, cln, protocol.RoleClinician, 0))
			},
			func(t *testing.T) Decision { return clinician(standard()) }},
		{RuleRoleWithdrawn, false,
			func(t *testing.T) Decision {
				x := standard()
				x.f.attests[cln] = nil
				return clinician(x.attest(clinic, cln, "", 0))
			},
			func(t *testing.T) Decision { return clinician(standard()) }},
		{RuleRoleExpired, false,
			func(t *testing.T) Decision {
				x := standard()
				x.f.attests[cln] = nil
				return clinician(x.attest(clinic, cln, protocol.RoleClinician, tNow.UnixMilli()))
			},
			func(t *testing.T) Decision {
				x := standard()
				x.f.attests[cln] = nil
				return clinician(x.attest(clinic, cln, protocol.RoleClinician, tNow.UnixMilli()+1))
			}},
		{RuleRoleUntrusted, false,
			func(t *testing.T) Decision {
				// the clinic is attested by an authority nobody trusts
				x := standard().declare(rogue, protocol.RoleAuthority)
				x.f.attests[clinic] = nil
				return clinician(x.attest(rogue, clinic, protocol.RoleClinic, 0))
			},
			func(t *testing.T) Decision {
				x := standard().declare(rogue, protocol.RoleAuthority).trust(rogue)
				x.f.attests[clinic] = nil
				return clinician(x.attest(rogue, clinic, protocol.RoleClinic, 0))
			}},
		{RuleRoleLoop, false,
			func(t *testing.T) Decision {
				// region and rogue attest each other; neither is trusted
				x := standard().declare(region, protocol.RoleAuthority).declare(rogue, protocol.RoleAuthority)
				x.f.attests[clinic] = nil
				x.attest(region, clinic, protocol.RoleClinic, 0).attest(rogue, region, protocol.RoleAuthority, 0).attest(region, rogue, protocol.RoleAuthority, 0)
				return clinician(x)
			},
			func(t *testing.T) Decision {
				x := standard().declare(region, protocol.RoleAuthority)
				x.f.attests[clinic] = nil
				return clinician(x.attest(region, clinic, protocol.RoleClinic, 0).attest(auth, region, protocol.RoleAuthority, 0))
			}},
		{RuleRoleTooLong, false,
			func(t *testing.T) Decision { return clinician(chainOfAuthorities(MaxRolePath - 2)) },
			func(t *testing.T) Decision { return clinician(chainOfAuthorities(MaxRolePath - 3)) }},
		{RuleRoleUnknown, false,
			func(t *testing.T) Decision { return standard().verify(gp, protocol.RoleClinician).decision() },
			func(t *testing.T) Decision { return clinician(standard()) }},
		{RuleRoleNotAttests, false,
			func(t *testing.T) Decision {
				return standard().declare(pat, protocol.RolePatient).verify(pat, protocol.RolePatient).decision()
			},
			func(t *testing.T) Decision { return clinician(standard()) }},
		{RuleAttestMay, true,
			func(t *testing.T) Decision { return mayAttest(protocol.RoleClinic, protocol.RoleClinician) },
			func(t *testing.T) Decision { return mayAttest(protocol.RoleClinician, protocol.RoleClinician) }},
		{RuleAttestMayNot, false,
			func(t *testing.T) Decision { return mayAttest(protocol.RoleClinic, protocol.RoleAuthority) },
			func(t *testing.T) Decision { return mayAttest(protocol.RoleAuthority, protocol.RoleAuthority) }},
		{RuleChainAttester, true,
			func(t *testing.T) Decision { return serveRoleChain(protocol.RoleClinic, true) },
			func(t *testing.T) Decision { return serveRoleChain(protocol.RoleClinic, false) }},
		{RuleChainNotAttester, false,
			func(t *testing.T) Decision { return serveRoleChain(protocol.RolePatient, true) },
			func(t *testing.T) Decision { return serveRoleChain(protocol.RoleAuthority, true) }},
		{RuleProfileAttested, true,
			func(t *testing.T) Decision { return serveAttestedProfile(true) },
			func(t *testing.T) Decision { return serveAttestedProfile(false) }},
		{RuleProfileNotListed, false,
			func(t *testing.T) Decision { return serveAttestedProfile(false) },
			func(t *testing.T) Decision { return serveAttestedProfile(true) }},
	}
}

// chainOfAuthorities is auth (trusted) → n regional authorities → clinic
// → cln: a path of n+3 accounts.
func chainOfAuthorities(n int) *roles {
	x := standard()
	x.f.attests[clinic] = nil
	above := auth
	for i := range n {
		a := testAccount(byte(100 + i))
		x.declare(a, protocol.RoleAuthority).attest(above, a, protocol.RoleAuthority, 0)
		above = a
	}
	return x.attest(above, clinic, protocol.RoleClinic, 0)
}

// A verified proof carries the path from the trusted authority down, the
// clinician's own department and emergency flag, and the earliest expiry
// on the path.
func TestVerifyRoleProof(t *testing.T) {
	until := tNow.Add(2 * time.Hour).UnixMilli()
	x := standard()
	x.f.attests[clinic] = nil
	x.f.attests[cln] = nil
	x.attest(auth, clinic, protocol.RoleClinic, later)
	x.f.attests[cln] = append(x.f.attests[cln], attestEvent{Attester: clinic, To: cln, Role: protocol.RoleClinician,
		Department: "Emergency", Emergency: true, Expires: until, Via: ref(clinic, 2)})
	p := x.verify(cln, protocol.RoleClinician)
	if !p.Verified || p.Rule != RuleRoleVerified {
		t.Fatalf("not verified: %+v", p)
	}
	if want := []protocol.AccountID{auth, clinic, cln}; len(p.Path) != 3 || p.Path[0] != want[0] || p.Path[1] != want[1] || p.Path[2] != want[2] {
		t.Fatalf("path %v, want %v", p.Path, want)
	}
	if p.Department != "Emergency" || !p.Emergency {
		t.Fatalf("department %q emergency %v", p.Department, p.Emergency)
	}
	if !p.Until.Equal(time.UnixMilli(later)) {
		t.Fatalf("until %v, want the clinic's expiry %v", p.Until, time.UnixMilli(later))
	}
	// The clinic's own proof says nothing of emergency.
	if q := x.verify(clinic, protocol.RoleClinic); !q.Verified || q.Emergency {
		t.Fatalf("clinic: %+v", q)
	}
	// Asked as a clinic, the clinician is not one.
	if q := x.verify(cln, protocol.RoleClinic); q.Verified || q.Rule != RuleRoleMismatch {
		t.Fatalf("clinician as clinic: %+v", q)
	}
	// The longest path allowed verifies.
	if q := chainOfAuthorities(MaxRolePath-3).verify(cln, protocol.RoleClinician); !q.Verified || len(q.Path) != MaxRolePath {
		t.Fatalf("path of %d: %+v", MaxRolePath, q)
	}
}

// One good path is enough, whatever else attests the account; a refusal
// reports the path that got furthest.
func TestVerifyRoleSeveralAttesters(t *testing.T) {
	x := standard().declare(mal, protocol.RolePatient).attest(mal, cln, protocol.RoleClinician, 0)
	if p := x.verify(cln, protocol.RoleClinician); !p.Verified {
		t.Fatalf("a forged extra attestation took the role away: %+v", p)
	}
	y := standard().declare(rogue, protocol.RoleAuthority)
	y.f.attests[clinic] = nil
	y.attest(rogue, clinic, protocol.RoleClinic, 0)
	y.declare(mal, protocol.RolePatient).attest(mal, cln, protocol.RoleClinician, 0)
	p := y.verify(cln, protocol.RoleClinician)
	if p.Verified || p.Rule != RuleRoleUntrusted || len(p.Path) != 3 {
		t.Fatalf("want the untrusted path reported: %+v", p)
	}
}
