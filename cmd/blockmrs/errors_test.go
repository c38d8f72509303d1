package main

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
)

// pair sets up a patient (keys not encrypted) and a doctor (keys not
// encrypted) who know each other, and a FHIR record the doctor wrote for
// the patient, imported into the patient's repo. It returns the record's
// CID.
func pair(t *testing.T) (p, d *node, patient, doctor, rec string) {
	t.Helper()
	p, d = newNode(t, ""), newNode(t, "")
	patient = p.initAccount("--name", "patient", "--no-passphrase")
	doctor = d.initAccount("--name", "doctor", "--role", "clinician", "--no-passphrase")
	dir := t.TempDir()
	pc, dc, ex := filepath.Join(dir, "p.car"), filepath.Join(dir, "d.car"), filepath.Join(dir, "ex.car")
	p.ok("id", "--export", pc)
	d.ok("id", "--export", dc)
	p.ok("contact", "add", dc)
	d.ok("contact", "add", pc)
	rec = strings.TrimSpace(d.ok("add", "--kind", "fhir", "--for", patient, writeTemp(t, "obs.json", []byte(observation))))
	d.ok("export", ex)
	p.ok("import", ex)
	return
}

func TestWrongPassphrase(t *testing.T) {
	t.Parallel()
	n := newNode(t, "right")
	n.initAccount("--name", "alice")
	n.env[envPassphrase] = "wrong"
	r := n.fail(1, "ls")
	if !strings.Contains(r.stderr, "wrong passphrase") {
		t.Fatalf("stderr %q", r.stderr)
	}
	// No passphrase and no terminal: a clear one-line error.
	delete(n.env, envPassphrase)
	r = n.fail(1, "ls")
	if !strings.Contains(r.stderr, "no terminal") || !strings.Contains(r.stderr, envPassphrase) {
		t.Fatalf("stderr %q", r.stderr)
	}
	// Commands that need no keys still work.
	n.ok("id")
	n.verifyOK()
	// init without passphrase, terminal or --no-passphrase fails clearly.
	r = n.fail(1, "init", "--name", "bob")
	if !strings.Contains(r.stderr, "--no-passphrase") {
		t.Fatalf("stderr %q", r.stderr)
	}
	// ... and creates no repo when there was none.
	fresh := newNode(t, "")
	fresh.fail(1, "init")
	if _, err := os.Stat(fresh.dir); !os.IsNotExist(err) {
		t.Fatalf("a failed init left %s behind", fresh.dir)
	}
	// An explicitly empty passphrase means none.
	n.env[envPassphrase] = ""
	var bob struct{ Encrypted bool }
	n.json(&bob, "init", "--name", "bob", "--json")
	if bob.Encrypted {
		t.Fatal("empty BLOCKMRS_PASSPHRASE encrypted the keys")
	}
	n.ok("ls", "--account", "bob")
	// Same name twice is refused.
	n.fail(1, "init", "--name", "Bob", "--no-passphrase")
}

func TestAccessErrors(t *testing.T) {
	t.Parallel()
	p, d, patient, _, rec := pair(t)
	// Grant to an account nobody knows.
	r := p.fail(1, "grant", rec, "--to", "mallory")
	if !strings.Contains(r.stderr, "unknown account") {
		t.Fatalf("stderr %q", r.stderr)
	}
	// The doctor wrote the record but only its subject may grant it.
	r = d.fail(1, "grant", "--to", "patient", rec)
	if !strings.Contains(r.stderr, "only the record's subject") {
		t.Fatalf("stderr %q", r.stderr)
	}
	d.fail(1, "hide", rec)
	// Granting to yourself, revoking what was never granted.
	p.fail(1, "grant", rec, "--to", patient)
	p.fail(1, "revoke", rec, "--from", "doctor")
	// An expiry in the past.
	p.fail(1, "grant", rec, "--to", "doctor", "--expires", "2001-01-01T00:00:00Z")
	// A record nobody knows.
	other := "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	p.fail(1, "get", other)
	p.fail(1, "grant", other, "--to", "doctor")
	// A grant with an expiry works, and shows in the log.
	var g struct{ Expires string }
	p.json(&g, "grant", rec, "--to", "doctor", "--expires", "720h", "--json")
	if g.Expires == "" {
		t.Fatal("grant --expires: no expiry in output")
	}
	if !strings.Contains(p.ok("log"), ", until ") {
		t.Fatal("log: no expiry on the grant")
	}
	p.verifyOK()
	d.verifyOK()
}

func TestMalformedFHIR(t *testing.T) {
	t.Parallel()
	n := newNode(t, "")
	n.initAccount("--name", "alice", "--no-passphrase")
	n.ok("add", "--kind", "note", writeTemp(t, "note.txt", []byte("feeling fine\n")))
	before := n.ok("ls", "--json")
	for name, body := range map[string]string{
		"truncated.json":  `{"resourceType": "Observation", "status": `,
		"noresource.json": `{"status": "final"}`,
		"two.json":        `{"resourceType": "Observation"} {"resourceType": "Patient"}`,
		"array.json":      `[{"resourceType": "Observation"}]`,
	} {
		r := n.fail(1, "add", "--kind", "fhir", writeTemp(t, name, []byte(body)))
		if !strings.Contains(r.stderr, "FHIR") {
			t.Errorf("%s: stderr %q", name, r.stderr)
		}
	}
	// From stdin too.
	n.failIn(strings.NewReader("{not json"), 1, "add", "--kind", "fhir", "-")
	if after := n.ok("ls", "--json"); after != before {
		t.Fatalf("ls changed:\n%s\n%s", before, after)
	}
	n.verifyOK()
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	n := newNode(t, "")
	n.initAccount("--name", "alice", "--no-passphrase")
	c := "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
	for _, args := range [][]string{
		{"frobnicate"},
		{"add"},
		{"add", "a", "b"},
		{"add", "--kind", "spreadsheet", "x"},
		{"add", "--type", "not a type", "x"},
		{"add", "--supersedes", "nope", "x"},
		{"get"},
		{"get", "not-a-cid"},
		{"get", c, "--bogus"},
		{"grant", c},
		{"grant", "--to", "bob"},
		{"grant", c, "--to", "bob", "--expires", "soon"},
		{"grant", c, "--to", "bob", "--expires", "-5h"},
		{"revoke", c},
		{"hide"},
		{"unhide", "x"},
		{"cat", c},
		{"cat", "--raw"},
		{"key"},
		{"key", "import", c},
		{"key", "export"},
		{"contact"},
		{"contact", "remove"},
		{"contact", "add"},
		{"contact", "ls", "extra"},
		{"export"},
		{"import"},
		{"init", "--role", "wizard"},
		{"init", "extra"},
		{"id", "extra"},
		{"id", "--export", "-", "--json"},
		{"log", "a", "b"},
		{"log", "--account", "alice", "alice"},
		{"verify", c, c},
		{"ls", "--all=maybe"},
		{"gc", "now"},
		{"version", "1"},
	} {
		n.fail(2, args...)
	}
	// Help for every command goes to stdout and exits 0.
	for _, c := range commands {
		out := n.ok(c.name, "--help")
		if !strings.Contains(out, "Usage: blockmrs "+c.name) || !strings.Contains(out, "Example:") {
			t.Errorf("%s --help:\n%s", c.name, out)
		}
		if out2 := n.ok("help", c.name); out2 != out {
			t.Errorf("help %s differs from %s --help", c.name, c.name)
		}
	}
	for _, sub := range [][]string{{"contact", "add"}, {"contact", "ls"}, {"key", "export"}} {
		if out := n.ok(append(sub, "-h")...); !strings.Contains(out, "Usage: blockmrs "+strings.Join(sub, " ")) {
			t.Errorf("%v -h:\n%s", sub, out)
		}
	}
	out := n.ok("help")
	for _, c := range commands {
		if !strings.Contains(out, "\n  "+c.name+" ") {
			t.Errorf("help does not list %s", c.name)
		}
	}
	// No arguments: the list, on stderr, exit 2.
	if r := n.run(); r.code != 2 || !strings.Contains(r.stderr, "Commands:") || r.stdout != "" {
		t.Errorf("no args: exit %d, stdout %q", r.code, r.stdout)
	}
	// No repo at all: exit 1, says to run init.
	empty := newNode(t, "")
	if r := empty.fail(1, "ls"); !strings.Contains(r.stderr, "blockmrs init") {
		t.Errorf("no repo: %q", r.stderr)
	}
	n.ok("version")
}

// TestBadCAR imports a truncated CAR and CARs with one flipped byte into a
// fresh repo: each is rejected whole and the repo's accounts and contacts
// stay as they were.
func TestBadCAR(t *testing.T) {
	t.Parallel()
	p, _, _, _, _ := pair(t)
	p.ok("add", writeTemp(t, "scan.pdf", pdfLike(t, 1<<20+777)))
	dir := t.TempDir()
	full := filepath.Join(dir, "full.car")
	p.ok("export", full)
	data := readFile(t, full)

	fresh := newNode(t, "")
	fresh.initAccount("--name", "carol", "--no-passphrase")
	accounts, contacts := fresh.ok("accounts", "--json"), fresh.ok("contact", "ls", "--json")
	check := func(what string, car []byte) {
		t.Helper()
		f := filepath.Join(dir, what+".car")
		if err := os.WriteFile(f, car, 0o600); err != nil {
			t.Fatal(err)
		}
		fresh.fail(1, "import", f)
		fresh.failIn(bytes.NewReader(car), 1, "contact", "add", "-")
		if a, c := fresh.ok("accounts", "--json"), fresh.ok("contact", "ls", "--json"); a != accounts || c != contacts {
			t.Fatalf("%s: the repo changed:\n%s\n%s", what, a, c)
		}
	}
	check("truncated", data[:len(data)/2])
	check("truncated-end", data[:len(data)-1])
	check("empty", nil)
	for _, at := range []int{20, len(data) / 3, len(data) / 2, len(data) - 1} {
		bad := bytes.Clone(data)
		bad[at] ^= 0x01
		check("flipped", bad)
	}
	fresh.verifyOK()
	// The intact CAR imports.
	fresh.ok("import", full)
	fresh.verifyOK()
}

// TestCorruptBlock flips a byte in a stored block of a record: get and
// verify fail and name the block, and get -o leaves no file.
func TestCorruptBlock(t *testing.T) {
	t.Parallel()
	n := newNode(t, "")
	n.initAccount("--name", "alice", "--no-passphrase")
	blocks := filepath.Join(n.dir, "blocks")
	before := blockFiles(t, blocks)
	data := pdfLike(t, 3<<20+5)
	c := strings.TrimSpace(n.ok("add", writeTemp(t, "scan.pdf", data)))
	var id struct {
		Account struct {
			Head link `json:"head"`
		} `json:"account"`
	}
	n.json(&id, "id", "--json")
	root, head := blockFile(t, c), blockFile(t, id.Account.Head)
	var leaves []string
	for name, path := range blockFiles(t, blocks) {
		if _, old := before[name]; !old && name != root && name != head {
			leaves = append(leaves, path)
		}
	}
	if len(leaves) != 4 {
		t.Fatalf("want 4 leaf blocks for 3 MiB, found %d", len(leaves))
	}
	out := filepath.Join(t.TempDir(), "scan.pdf")
	n.ok("get", "-o", out, c)
	if !bytes.Equal(readFile(t, out), data) {
		t.Fatal("get: bytes differ")
	}
	n.verifyOK(c)

	// Flip one byte in the middle of a leaf block.
	leaf := leaves[0]
	raw := readFile(t, leaf)
	raw[len(raw)/2] ^= 0x80
	if err := os.Chmod(leaf, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leaf, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	leafName := strings.TrimSuffix(filepath.Base(leaf), ".data")
	namesLeaf := func(stderr string) bool {
		for _, m := range cidRe.FindAllString(stderr, -1) {
			if bc, err := cid.Decode(m); err == nil && blockFile(t, bc.String()) == leafName {
				return true
			}
		}
		return false
	}
	os.Remove(out)
	r := n.fail(1, "get", "-o", out, c)
	if !namesLeaf(r.stderr) || !strings.Contains(r.stderr, "corrupt") {
		t.Errorf("get: stderr does not name the corrupt block: %q", r.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("a failed get -o left a file")
	}
	if r := n.fail(1, "get", c); !namesLeaf(r.stderr) {
		t.Errorf("get to stdout: %q", r.stderr)
	}
	r = n.fail(1, "verify", c)
	if !namesLeaf(r.stderr) || !strings.Contains(r.stdout, "PROBLEM") {
		t.Errorf("verify: stderr %q stdout\n%s", r.stderr, r.stdout)
	}
	n.fail(1, "cat", "--raw", c)
	// Verify without a CID re-hashes every block: it fails, naming the
	// leaf's CID and the record it belongs to, on stdout and in the one
	// error line.
	r = n.fail(1, "verify")
	if !namesLeaf(r.stderr) || !strings.Contains(r.stderr, "is corrupt (part of record "+c+")") {
		t.Errorf("verify: stderr %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "BAD BLOCK ") || !strings.Contains(r.stdout, ": part of record "+c+"\n") ||
		!strings.Contains(r.stdout, "verified: PROBLEMS FOUND") {
		t.Errorf("verify: stdout\n%s", r.stdout)
	}
	var rep struct {
		OK        bool `json:"ok"`
		BadBlocks []struct {
			CID     string   `json:"cid"`
			Records []string `json:"records"`
		} `json:"bad_blocks"`
	}
	jr := n.run("verify", "--json")
	if err := json.Unmarshal([]byte(jr.stdout), &rep); err != nil || jr.code != 1 {
		t.Fatalf("verify --json: exit %d, %v\n%s", jr.code, err, jr.stdout)
	}
	if rep.OK || len(rep.BadBlocks) != 1 || blockFile(t, rep.BadBlocks[0].CID) != leafName ||
		len(rep.BadBlocks[0].Records) != 1 || rep.BadBlocks[0].Records[0] != c {
		t.Errorf("verify --json: %+v", rep)
	}
	// The chains are fine: the quick check passes.
	if out := n.verifyOK("--chains"); strings.Contains(out, "BAD BLOCK") || strings.Contains(out, "re-hashed") {
		t.Errorf("verify --chains re-hashed blocks:\n%s", out)
	}
}

// TestVerifyCleanRepo: verify over a clean repo re-hashes every block and
// passes.
func TestVerifyCleanRepo(t *testing.T) {
	t.Parallel()
	n := newNode(t, "")
	n.initAccount("--name", "alice", "--no-passphrase")
	n.ok("add", writeTemp(t, "scan.pdf", pdfLike(t, 2<<20)))
	out := n.verifyOK()
	// Two chain blocks, a root and 3 leaves.
	if !strings.Contains(out, "blocks ok, 6 re-hashed (") {
		t.Errorf("verify:\n%s", out)
	}
}

// blockFiles maps flatfs block names (without .data) to their paths.
func blockFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && strings.HasSuffix(p, ".data") {
			out[strings.TrimSuffix(e.Name(), ".data")] = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// blockFile returns the flatfs name of a CID's block: its multihash in
// unpadded upper-case base32.
func blockFile(t *testing.T, s string) string {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(c.Hash())
}
