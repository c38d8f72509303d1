// Package benchrepo fills a repo with many real records, fast, for the
// benchmarks of what reads them: the records list of the API
// (node/api) and the web app's records page (cmd/blockmrs).
//
// The records are what a clinic's node sends a patient: a clinician
// account ("Dr Bench", a contact of the repo) writes n records about a
// local account, each a real age-encrypted content, a real sealed
// envelope and the record key really wrapped for the patient and the
// clinician, so that listing them costs exactly what listing real
// records costs. Only the way they arrive is shortened: the clinician's
// chain holds many record entries per block and comes in one CAR
// (keyshare.Repo.ImportCAR), so 10,000 records take seconds where as
// many `blockmrs add` (one durable add and one signed block each) would
// take minutes.
package benchrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"filippo.io/age"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	carv2 "github.com/ipld/go-car/v2"
	carstorage "github.com/ipld/go-car/v2/storage"
	mh "github.com/multiformats/go-multihash"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/protocol"
)

// perBlock is how many record entries one chain block of the clinician
// holds (each about 1 KB, well under protocol.MaxBlockSize).
const perBlock = 500

// ClinicianName is the name of the clinician account that writes the
// records.
const ClinicianName = "Dr Bench"

// Fill adds n records about the local account patient to repo, written
// by a new clinician account (ClinicianName), and returns their CIDs in
// the order written. Their kinds cycle through file, fhir and note; record
// i is titled "Record i" with a creation time i minutes after a fixed
// start. The repo must not be held by another process.
func Fill(ctx context.Context, repo *keyshare.Repo, patient keyshare.AccountInfo, n int) ([]cid.Cid, error) {
	if n < 1 {
		return nil, fmt.Errorf("benchrepo: %d records: want at least one", n)
	}
	patKey, err := patient.ID.Key()
	if err != nil {
		return nil, fmt.Errorf("benchrepo: patient: %w", err)
	}
	patRcpt, err := patient.AgeRecipient()
	if err != nil {
		return nil, fmt.Errorf("benchrepo: patient: %w", err)
	}
	dr, err := keyshare.GenerateKeys()
	if err != nil {
		return nil, err
	}
	var chain []blocks.Block // genesis first
	sign := func(b *protocol.Block) error {
		if len(chain) > 0 {
			l := protocol.NewLink(chain[len(chain)-1].Cid())
			b.Prev = &l
		}
		raw, c, err := b.Sign(dr.Sign)
		if err != nil {
			return fmt.Errorf("benchrepo: sign block %d: %w", b.Seq, err)
		}
		blk, err := blocks.NewBlockWithCid(raw, c)
		if err != nil {
			return err
		}
		chain = append(chain, blk)
		return nil
	}
	start := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := sign(&protocol.Block{Seq: 0, Time: start.UnixMilli(), Entries: []protocol.Entry{protocol.NewEntry(
		&protocol.Profile{Name: ClinicianName, Role: protocol.RoleClinician, Recipient: dr.Age.Recipient().String()})}}); err != nil {
		return nil, err
	}
	recs, content, err := records(n, start, dr, patKey, patRcpt)
	if err != nil {
		return nil, err
	}
	out := make([]cid.Cid, 0, n)
	var entries []protocol.Entry
	for i, rec := range recs {
		out = append(out, content[i].Cid())
		entries = append(entries, protocol.NewEntry(rec))
		if len(entries) == perBlock || i == n-1 {
			if err := sign(&protocol.Block{Seq: uint64(len(chain)), Time: start.Add(time.Duration(i) * time.Minute).UnixMilli(), Entries: entries}); err != nil {
				return nil, err
			}
			entries = nil
		}
	}
	var car bytes.Buffer
	if err := writeCAR(ctx, &car, chain[len(chain)-1].Cid(), append(chain, content...)); err != nil {
		return nil, err
	}
	if _, err := repo.ImportCAR(ctx, &car); err != nil {
		return nil, fmt.Errorf("benchrepo: import: %w", err)
	}
	return out, nil
}

// records makes records 0 to n-1 (record), on every core.
func records(n int, start time.Time, dr *keyshare.Keys, patKey []byte, patRcpt age.Recipient) ([]*protocol.Record, []blocks.Block, error) {
	recs := make([]*protocol.Record, n)
	content := make([]blocks.Block, n)
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				recs[i], content[i], errs[i] = record(i, start, dr, patKey, patRcpt)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return recs, content, errors.Join(errs...)
}

// record makes record i: its content block (a small age file, stored as
// one raw block, the CID `blockmrs add` gives a content this small) and
// its record entry.
func record(i int, start time.Time, dr *keyshare.Keys, patKey []byte, patRcpt age.Recipient) (*protocol.Record, blocks.Block, error) {
	kinds := []struct {
		kind  protocol.Kind
		media string
		body  string
	}{
		{protocol.KindFile, "application/pdf", "%PDF-1.4 record %d\n"},
		{protocol.KindFHIR, "application/fhir+json", `{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2345-7","display":"Glucose"}],"text":"Glucose"},"valueQuantity":{"value":%d,"unit":"mg/dL"}}`},
		{protocol.KindNote, "text/plain; charset=utf-8", "Note %d: feeling better.\n"},
	}
	k := kinds[i%len(kinds)]
	key, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, nil, err
	}
	ct, err := seal(fmt.Appendf(nil, k.body, 80+i%100), key.Recipient())
	if err != nil {
		return nil, nil, err
	}
	h, err := mh.Sum(ct, mh.SHA2_256, -1)
	if err != nil {
		return nil, nil, err
	}
	blk, err := blocks.NewBlockWithCid(ct, cid.NewCidV1(cid.Raw, h))
	if err != nil {
		return nil, nil, err
	}
	env := &protocol.Envelope{Title: fmt.Sprintf("Record %d", i), Kind: k.kind, MediaType: k.media,
		Author: dr.Public(), Subject: patKey, Created: start.Add(time.Duration(i) * time.Minute).UnixMilli()}
	if k.kind == protocol.KindFile {
		env.FileName = fmt.Sprintf("record-%d.pdf", i)
	}
	if k.kind == protocol.KindFHIR {
		// What an import writes of a lab value: its clinical date spread
		// over the years, so that date filters keep some and not others.
		env.FHIR = &protocol.Clinical{ResourceType: "Observation", ID: fmt.Sprintf("obs-%d", i),
			Date: start.AddDate(0, 0, -i).Format("2006-01-02"), Code: "http://loinc.org|2345-7",
			Display: "Glucose", Category: []string{"laboratory"}}
	}
	hdr, err := env.Header()
	if err != nil {
		return nil, nil, fmt.Errorf("benchrepo: envelope %d: %w", i, err)
	}
	meta, err := seal(hdr, key.Recipient())
	if err != nil {
		return nil, nil, err
	}
	secret := []byte(key.String())
	toDr, err := seal(secret, dr.Age.Recipient())
	if err != nil {
		return nil, nil, err
	}
	toPat, err := seal(secret, patRcpt)
	if err != nil {
		return nil, nil, err
	}
	return &protocol.Record{Record: protocol.NewLink(blk.Cid()), Subject: patKey, Meta: meta,
		Keys: []protocol.WrappedKey{{To: dr.Public(), Key: toDr}, {To: patKey, Key: toPat}}}, blk, nil
}

// seal age-encrypts plain to one recipient, as a binary age file.
func seal(plain []byte, to age.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, to)
	if err != nil {
		return nil, fmt.Errorf("benchrepo: encrypt: %w", err)
	}
	if _, err := w.Write(plain); err != nil {
		return nil, fmt.Errorf("benchrepo: encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("benchrepo: encrypt: %w", err)
	}
	return buf.Bytes(), nil
}

// writeCAR writes a CARv1 with one root and blks.
func writeCAR(ctx context.Context, w io.Writer, root cid.Cid, blks []blocks.Block) error {
	cw, err := carstorage.NewWritable(w, []cid.Cid{root}, carv2.WriteAsCarV1(true))
	if err != nil {
		return fmt.Errorf("benchrepo: CAR: %w", err)
	}
	for _, b := range blks {
		if err := cw.Put(ctx, b.Cid().KeyString(), b.RawData()); err != nil {
			return fmt.Errorf("benchrepo: CAR: %w", err)
		}
	}
	return cw.Finalize()
}
