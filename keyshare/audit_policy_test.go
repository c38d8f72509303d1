package keyshare

import "testing"

// auditPolicyCases are the table rows of the rules of reported audit
// events (keepReport).
func auditPolicyCases() []policyCase {
	good := reportFacts{signedBySender: true, firstHand: true, subjectLocal: true, newer: true, declared: true, quotaLeft: true}
	with := func(change func(*reportFacts)) func(t *testing.T) Decision {
		return func(t *testing.T) Decision {
			f := good
			change(&f)
			return keepReport(f)
		}
	}
	return []policyCase{
		{RuleReportKept, true, with(func(*reportFacts) {}), with(func(f *reportFacts) { f.signedBySender = false })},
		{RuleReportUndeclared, true, with(func(f *reportFacts) { f.declared = false }),
			with(func(f *reportFacts) { f.declared, f.quotaLeft = false, false })},
		{RuleReportForged, false, with(func(f *reportFacts) { f.signedBySender = false }), with(func(*reportFacts) {})},
		{RuleReportRelayed, false, with(func(f *reportFacts) { f.firstHand = false }), with(func(*reportFacts) {})},
		{RuleReportForeign, false, with(func(f *reportFacts) { f.subjectLocal = false }), with(func(*reportFacts) {})},
		{RuleReportReplayed, false, with(func(f *reportFacts) { f.newer = false }), with(func(*reportFacts) {})},
		{RuleReportOverQuota, false, with(func(f *reportFacts) { f.declared, f.quotaLeft = false, false }),
			with(func(f *reportFacts) { f.declared, f.quotaLeft = true, false })},
	}
}
