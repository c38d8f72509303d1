package main

import (
	"strings"
	"testing"
)

func TestParseAndDraw(t *testing.T) {
	in := `goos: linux
BenchmarkClinicDecision/records=1000/permitted-2   2000   13485 ns/op
BenchmarkClinicDecision/records=100000/permitted-2 2000   15000.5 ns/op
BenchmarkClinicDecision/records=1000/refused-2     2000    6025 ns/op
BenchmarkOther-2                                   10      5 ns/op
PASS`
	s, err := parse(strings.NewReader(in), "records")
	if err != nil {
		t.Fatal(err)
	}
	p := s["ClinicDecision/permitted"]
	if len(s) != 2 || len(p) != 2 || p[0].x != 1000 || p[1].y != 15000.5 {
		t.Fatalf("parsed %v", s)
	}
	var b strings.Builder
	if err := draw(&b, "t <&>", "records", s); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "<polyline") || !strings.Contains(out, "t &lt;&amp;&gt;") || !strings.HasSuffix(out, "</svg>\n") {
		t.Fatalf("svg: %s", out)
	}
}
