package keyshare

import (
	"testing"
	"time"

	"github.com/blockmrs/blockmrs/protocol"
)

// The emergency rules of policy.go in the table (TestPolicyTable): each
// with the case it decides and the nearest case that flips it. pat is the
// patient, gp and mal custodians, doc the clinician who asks.

// emergencyCase is a request by doc for pat's live 2-of-2 pack (gp and
// mal its custodians, gp held on this node), made at tNow, from a
// verified emergency clinician; change edits it.
func emergencyCase(change func(f *emergencyFacts)) Decision {
	pack := &protocol.EmergencyPack{Threshold: 2, Until: tNow.Add(time.Hour).UnixMilli(), Window: time.Hour.Milliseconds(),
		Shares: []protocol.EmergencyShare{{To: keyOf(gp), Index: 1}, {To: keyOf(mal), Index: 2}}}
	f := emergencyFacts{created: tNow, pack: pack, held: []protocol.AccountID{gp}, asker: doc, patient: pat,
		role: EmergencyRole{Verified: true, Emergency: true, Why: "attested by St Mary's"}}
	if change != nil {
		change(&f)
	}
	return emergencyShare(f, tNow)
}

// keepCase is pat's pack in block 5 of her chain, naming a custodian on
// this node, live for an hour, the newest seen; change edits it.
func keepCase(change func(f *emergencyHoldFacts)) Decision {
	f := emergencyHoldFacts{patient: pat, mine: true, seq: 5, until: tNow.Add(time.Hour), newest: 5}
	if change != nil {
		change(&f)
	}
	return emergencyKeep(f, tNow)
}

func emergencyKeepPolicyCases() []policyCase {
	same := func(t *testing.T) Decision { return keepCase(nil) }
	return []policyCase{
		{RuleEmergencyKeep, true, same,
			func(t *testing.T) Decision { return keepCase(func(f *emergencyHoldFacts) { f.ended = true }) }},
		{RuleEmergencyKeepNotMine, false,
			func(t *testing.T) Decision { return keepCase(func(f *emergencyHoldFacts) { f.mine = false }) }, same},
		{RuleEmergencyKeepEnded, false,
			func(t *testing.T) Decision { return keepCase(func(f *emergencyHoldFacts) { f.ended = true }) }, same},
		{RuleEmergencyKeepOlder, false,
			func(t *testing.T) Decision {
				return keepCase(func(f *emergencyHoldFacts) { f.newest, f.newer = 7, true })
			},
			func(t *testing.T) Decision {
				// another pack at the same position (one block) does not supersede it
				return keepCase(func(f *emergencyHoldFacts) { f.newer = true })
			}},
		{RuleEmergencyKeepExpired, false,
			func(t *testing.T) Decision { return keepCase(func(f *emergencyHoldFacts) { f.until = tNow }) },
			func(t *testing.T) Decision {
				return keepCase(func(f *emergencyHoldFacts) { f.until = tNow.Add(time.Millisecond) })
			}},
	}
}

func emergencyPolicyCases() []policyCase {
	same := func(t *testing.T) Decision { return emergencyCase(nil) }
	return append(emergencyKeepPolicyCases(), []policyCase{
		{RuleEmergencyShare, true, same,
			func(t *testing.T) Decision {
				return emergencyCase(func(f *emergencyFacts) { f.role.Emergency = false })
			}},
		{RuleEmergencyStale, false,
			func(t *testing.T) Decision {
				return emergencyCase(func(f *emergencyFacts) { f.created = tNow.Add(-6 * time.Minute) })
			},
			func(t *testing.T) Decision {
				return emergencyCase(func(f *emergencyFacts) { f.created = tNow.Add(-4 * time.Minute) })
			}},
		{RuleEmergencyReplay, false,
			func(t *testing.T) Decision { return emergencyCase(func(f *emergencyFacts) { f.replay = true }) }, same},
		{RuleEmergencyRetired, false,
			func(t *testing.T) Decision { return emergencyCase(func(f *emergencyFacts) { f.retired = true }) }, same},
		{RuleEmergencyNoPack, false,
			func(t *testing.T) Decision { return emergencyCase(func(f *emergencyFacts) { f.pack = nil }) }, same},
		{RuleEmergencyNotHeld, false,
			func(t *testing.T) Decision { return emergencyCase(func(f *emergencyFacts) { f.held = nil }) }, same},
		{RuleEmergencyEnded, false,
			func(t *testing.T) Decision { return emergencyCase(func(f *emergencyFacts) { f.ended = true }) }, same},
		{RuleEmergencyExpired, false,
			func(t *testing.T) Decision {
				return emergencyCase(func(f *emergencyFacts) { f.pack.Until = tNow.UnixMilli() })
			}, same},
		{RuleEmergencyWindow, false,
			func(t *testing.T) Decision {
				return emergencyCase(func(f *emergencyFacts) { f.firstUse = tNow.Add(-time.Hour) })
			},
			func(t *testing.T) Decision {
				// a first use within the window keeps the pack open
				return emergencyCase(func(f *emergencyFacts) { f.firstUse = tNow.Add(-59 * time.Minute) })
			}},
		{RuleEmergencyByCustodian, false,
			func(t *testing.T) Decision { return emergencyCase(func(f *emergencyFacts) { f.asker = mal }) }, same},
		{RuleEmergencyNoRole, false,
			func(t *testing.T) Decision {
				return emergencyCase(func(f *emergencyFacts) { f.role = EmergencyRole{Why: "self-declared"} })
			}, same},
		{RuleEmergencyNotAttested, false,
			func(t *testing.T) Decision {
				return emergencyCase(func(f *emergencyFacts) { f.role.Emergency = false })
			},
			same},
	}...)
}
