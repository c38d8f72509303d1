package keyshare_test

// Interop with the stock tools, through the exported API only, as a third
// party would: a record key plus the record's raw ciphertext decrypt with
// stock `age -d`, and an account's CAR export imports into a stock Kubo
// node (and into a fresh repo) unchanged. See DESIGN.md, "Interop that must
// keep holding".

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/blockmrs/blockmrs/internal/stocktools"
	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

type interopParty struct {
	repo *keyshare.Repo
	keys *keyshare.Keys
}

func openInteropRepo(t *testing.T) *keyshare.Repo {
	t.Helper()
	r, err := keyshare.Open(context.Background(), t.TempDir(), keyshare.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	stocktools.CloseAtCleanup(t, r)
	return r
}

func newInteropParty(t *testing.T, name string, role protocol.Role) *interopParty {
	t.Helper()
	r := openInteropRepo(t)
	k, err := r.CreateAccount(context.Background(), name, role, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &interopParty{repo: r, keys: k}
}

// interopBytes returns n deterministic pseudo-random bytes.
func interopBytes(label string, n int) []byte {
	return stocktools.PseudoRandomBytes("blockmrs keyshare interop "+label, n)
}

// interopText returns about n bytes of numbered text lines.
func interopText(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %06d: haemoglobin 13.%d g/dL, ferritin %d ng/mL\n", i, i%10, 20+i%300)
	}
	return b.Bytes()[:n]
}

func catRecord(t *testing.T, r *keyshare.Repo, c cid.Cid) []byte {
	t.Helper()
	rc, err := r.Store().Cat(context.Background(), c)
	if err != nil {
		t.Fatalf("Store().Cat(%s): %v", c, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Store().Cat(%s): read: %v", c, err)
	}
	return data
}

func TestStockAgeDecryptsRecord(t *testing.T) {
	ctx := context.Background()
	p := newInteropParty(t, "Pat", protocol.RolePatient)
	dir := t.TempDir()
	ageBin := stocktools.Age(t)

	for _, tc := range []struct {
		name string
		kind protocol.Kind
		mt   string
		body []byte
	}{
		{"note 300KiB", protocol.KindNote, "text/plain; charset=utf-8", interopText(300<<10 + 11)},
		{"empty", protocol.KindFile, "application/octet-stream", []byte{}},
		{"file 2MiB+7", protocol.KindFile, "application/octet-stream", interopBytes("2MiB+7", 2<<20+7)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := p.repo.AddRecord(ctx, p.keys, keyshare.NewRecord{Title: tc.name, Kind: tc.kind,
				MediaType: tc.mt, Body: bytes.NewReader(tc.body)})
			if err != nil {
				t.Fatalf("AddRecord: %v", err)
			}
			key, _, err := p.repo.RecordKey(ctx, p.keys, c)
			if err != nil {
				t.Fatalf("RecordKey: %v", err)
			}
			ks := key.String()
			if !strings.HasPrefix(ks, "AGE-SECRET-KEY-1") {
				t.Fatalf("record key %.16s… is not an age X25519 identity", ks)
			}
			base := strings.ReplaceAll(tc.name, " ", "-")
			keyFile := filepath.Join(dir, base+".key")
			stocktools.WriteFile(t, keyFile, strings.NewReader(ks+"\n"))
			ct := catRecord(t, p.repo, c)
			ctFile := filepath.Join(dir, base+".age")
			stocktools.WriteFile(t, ctFile, bytes.NewReader(ct))

			// The bytes at the CID are a bare age file: nothing before
			// its header (the metadata is sealed in the chain entry).
			if !bytes.HasPrefix(ct, []byte("age-encryption.org/v1\n-> X25519 ")) {
				t.Fatalf("ciphertext starts %q, want an age header for one X25519 recipient", ct[:min(len(ct), 40)])
			}
			if len(tc.body) > 64 && bytes.Contains(ct, tc.body[:64]) {
				t.Fatal("ciphertext contains plaintext")
			}

			got := stocktools.RunTool(t, nil, ageBin, "-d", "-i", keyFile, ctFile)
			t.Logf("%s: %d plaintext bytes, %d ciphertext bytes; age -d gave %d bytes", c, len(tc.body), len(ct), len(got))
			if !bytes.Equal(got, tc.body) {
				t.Fatalf("age -d gave %d bytes, want the %d added (first difference at %d)", len(got), len(tc.body), firstDiff(got, tc.body))
			}

			// The key file's recipient is the record's, as stock
			// age-keygen sees it.
			if rcpt := strings.TrimSpace(string(stocktools.RunTool(t, nil, stocktools.AgeKeygen(t), "-y", keyFile))); rcpt != key.Recipient().String() {
				t.Fatalf("age-keygen -y gave %s, want %s", rcpt, key.Recipient())
			}
			// The account's own identity is not a recipient of the
			// content: access goes through the wrapped record key.
			acctKey := filepath.Join(dir, base+".account.key")
			stocktools.WriteFile(t, acctKey, strings.NewReader(p.keys.Age.String()+"\n"))
			cmd := exec.Command(ageBin, "-d", "-i", acctKey, ctFile)
			if out, err := cmd.CombinedOutput(); err == nil {
				t.Fatalf("age -d with the account key succeeded; want failure (output %d bytes)", len(out))
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// exportCAR returns id's account export from r.
func exportCAR(t *testing.T, r *keyshare.Repo, id protocol.AccountID) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := r.ExportCAR(context.Background(), &buf, id); err != nil {
		t.Fatalf("ExportCAR(%s): %v", id, err)
	}
	return buf.Bytes()
}

// sendAccount exports from's account and imports it into to.
func sendAccount(t *testing.T, from, to *interopParty) {
	t.Helper()
	if _, err := to.repo.ImportCAR(context.Background(), bytes.NewReader(exportCAR(t, from.repo, from.keys.ID))); err != nil {
		t.Fatalf("ImportCAR: %v", err)
	}
}

func sendProfile(t *testing.T, from, to *interopParty) {
	t.Helper()
	var buf bytes.Buffer
	if err := from.repo.ExportProfile(context.Background(), &buf, from.keys.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := to.repo.ImportCAR(context.Background(), &buf); err != nil {
		t.Fatalf("ImportCAR(profile): %v", err)
	}
}

func TestStockIPFSImportsExportCAR(t *testing.T) {
	ctx := context.Background()
	patient := newInteropParty(t, "Pat", protocol.RolePatient)
	doctor := newInteropParty(t, "Dr Who", protocol.RoleClinician)
	sendProfile(t, patient, doctor)
	sendProfile(t, doctor, patient)

	// The doctor writes two records about the patient; the patient
	// acknowledges the first by granting it on, the second explicitly.
	addRecord := func(p *interopParty, nr keyshare.NewRecord) cid.Cid {
		t.Helper()
		c, err := p.repo.AddRecord(ctx, p.keys, nr)
		if err != nil {
			t.Fatalf("AddRecord(%s): %v", nr.Title, err)
		}
		return c
	}
	labs := addRecord(doctor, keyshare.NewRecord{Title: "Lab results", Kind: protocol.KindNote,
		MediaType: "text/plain", Subject: patient.keys.ID, Body: bytes.NewReader(interopText(200 << 10))})
	letter := addRecord(doctor, keyshare.NewRecord{Title: "Discharge letter", Kind: protocol.KindFile,
		MediaType: "application/pdf", Subject: patient.keys.ID, Body: bytes.NewReader(interopBytes("letter", 3<<20+5))})
	sendAccount(t, doctor, patient)

	scan := addRecord(patient, keyshare.NewRecord{Title: "X-ray", Kind: protocol.KindFile,
		MediaType: "application/octet-stream", Body: bytes.NewReader(interopBytes("scan", 2<<20+7))})
	empty := addRecord(patient, keyshare.NewRecord{Title: "Empty", Kind: protocol.KindFile,
		MediaType: "application/octet-stream", Body: bytes.NewReader(nil)})
	if _, err := patient.repo.Grant(ctx, patient.keys, []cid.Cid{scan, labs}, doctor.keys.ID, time.Time{}); err != nil {
		t.Fatalf("Grant: %v", err)
	}
	if n, err := patient.repo.Acknowledge(ctx, patient.keys); err != nil || n != 1 {
		t.Fatalf("Acknowledge: %d acks, %v; want 1 (the letter)", n, err)
	}
	sendAccount(t, patient, doctor)
	records := []cid.Cid{labs, letter, scan, empty}

	info, err := patient.repo.Account(ctx, patient.keys.ID)
	if err != nil {
		t.Fatal(err)
	}
	head := info.Head
	export := exportCAR(t, patient.repo, patient.keys.ID)
	carPath := filepath.Join(t.TempDir(), "patient.car")
	stocktools.WriteFile(t, carPath, bytes.NewReader(export))
	t.Logf("patient %s head %s seq %d: export %d bytes", patient.keys.ID, head, info.Seq, len(export))

	k := stocktools.StartKubo(t, stocktools.KuboOptions{})
	// Default root pinning: Kubo pins the head recursively, which needs
	// every block the head reaches, through dag-cbor chain blocks, acks
	// into the doctor's chain and the records' UnixFS DAGs.
	out, err := k.Run("dag", "import", carPath)
	if err != nil {
		t.Fatalf("ipfs dag import: %v", err)
	}
	t.Logf("ipfs dag import: %s", bytes.TrimSpace(out))
	if !bytes.Contains(out, []byte(head.String())) || !bytes.Contains(out, []byte("success")) {
		t.Fatalf("ipfs dag import did not report pinning root %s: %s", head, out)
	}
	pins, err := k.Run("pin", "ls", "--type=recursive", "-q")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains("\n"+string(pins), "\n"+head.String()+"\n") {
		t.Fatalf("recursive pins %q do not include the head %s", pins, head)
	}

	for _, c := range records {
		want := catRecord(t, patient.repo, c)
		if got := k.Cat(t, c.String()); !bytes.Equal(got, want) {
			t.Fatalf("ipfs cat %s: %d bytes, want Store().Cat's %d", c, len(got), len(want))
		}
	}

	dagJSON, err := k.Run("dag", "get", head.String())
	if err != nil {
		t.Fatalf("ipfs dag get: %v", err)
	}
	var blk map[string]json.RawMessage
	if err := json.Unmarshal(dagJSON, &blk); err != nil {
		t.Fatalf("ipfs dag get %s: not a JSON object: %v: %s", head, err, dagJSON)
	}
	for _, key := range []string{"v", "seq", "prev", "time", "author", "entries", "sig"} {
		if _, ok := blk[key]; !ok {
			t.Fatalf("ipfs dag get %s: no %q in %s", head, key, dagJSON)
		}
	}
	var seq uint64
	if err := json.Unmarshal(blk["seq"], &seq); err != nil || seq != info.Seq {
		t.Fatalf("ipfs dag get: seq %s, want %d (%v)", blk["seq"], info.Seq, err)
	}
	var prev map[string]string
	if err := json.Unmarshal(blk["prev"], &prev); err != nil || prev["/"] == "" {
		t.Fatalf("ipfs dag get: prev %s is not a dag-json link", blk["prev"])
	}

	// Kubo's own export of the same DAG, for the record.
	if theirs := k.DagExport(t, head.String()); bytes.Equal(theirs, export) {
		t.Logf("ipfs dag export %s is byte-identical to ours", head)
	} else {
		t.Logf("ipfs dag export %s differs from ours (%d vs %d bytes); block order is not part of the contract", head, len(theirs), len(export))
	}

	// A fresh repo takes the same file, and its export is the same CAR.
	fresh := openInteropRepo(t)
	f, err := os.Open(carPath)
	if err != nil {
		t.Fatal(err)
	}
	res, err := fresh.ImportCAR(ctx, f)
	f.Close()
	if err != nil {
		t.Fatalf("ImportCAR into a fresh repo: %v", err)
	}
	if len(res.Roots) != 1 || !res.Roots[0].Equals(head) {
		t.Fatalf("fresh import roots %v, want [%s]", res.Roots, head)
	}
	got := map[protocol.AccountID]bool{}
	for _, a := range res.Accounts {
		got[a.ID] = true
	}
	if !got[patient.keys.ID] || !got[doctor.keys.ID] {
		t.Fatalf("fresh import brought accounts %+v, want the patient's and the doctor's chains", res.Accounts)
	}
	if again := exportCAR(t, fresh, patient.keys.ID); !bytes.Equal(again, export) {
		t.Fatalf("export from the fresh repo differs: %d bytes vs %d, first difference at %d", len(again), len(export), firstDiff(again, export))
	}
	rep, err := fresh.Verify(ctx, keyshare.VerifyOptions{})
	if err != nil || !rep.OK {
		t.Fatalf("Verify on the fresh repo: %v %+v", err, rep)
	}
	for _, c := range records {
		if !bytes.Equal(catRecord(t, fresh, c), catRecord(t, patient.repo, c)) {
			t.Fatalf("fresh repo: record %s differs", c)
		}
	}
}
