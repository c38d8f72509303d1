package keyshare

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"filippo.io/age"
	"github.com/ipfs/go-cid"
	"github.com/ipfs/go-datastore"

	"github.com/blockmrs/blockmrs/protocol"
	"github.com/blockmrs/blockmrs/store"
)

// Adding records, one or many. Every add goes through a Batch (AddRecord
// is a batch of one), in these steps, each in one function:
//
//  1. prepare: check the subject and the record it supersedes, check a
//     FHIR record's content, build the envelope and the readers list
//     (recordReaders);
//  2. storeRecord: encrypt and store the content to a fresh record key
//     (in the batch's store.AddBatch), seal the envelope to that key and
//     wrap the key for each reader, giving the record entry; then
//     standingEntries: the key wrapped for the subject's standing grantees
//     whose scope holds the record, in scoped entries that go in the same
//     chain block;
//  3. Commit: make every record durable and pinned at once, index their
//     blocks, and append every record entry to the author's chain in as
//     few chain blocks as protocol.MaxBlockSize allows, all in one commit
//     of the account state.
//
// Steps 1 and 2 run on runtime.GOMAXPROCS workers. A batch is atomic:
// any error (a bad record, a cancelled context, a full disk) drops every
// record it stored and leaves the chain as it was. One add marker spans
// the batch (adding.go), so a process killed half way leaves nothing
// after the next Open either.

// BatchError is a batch add failing on one of its records: Index is the
// record's place in the order of Batch.Add calls (0 first).
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string { return fmt.Sprintf("record %d: %v", e.Index, e.Err) }
func (e *BatchError) Unwrap() error { return e.Err }

// errBatchDone is a Batch used after Commit or Abort.
var errBatchDone = errors.New("batch add already committed or aborted")

// blockOverhead is what a chain block holds besides its entries (version,
// author, sequence number, link, time, signature and their keys), with
// room to spare.
const blockOverhead = 1024

// Batch adds records authored by one account in one atomic step; see
// NewBatch. Add may be called from one goroutine at a time; Commit or
// Abort ends the batch, and Abort after Commit does nothing, so it can
// be deferred.
type Batch struct {
	r      *Repo
	k      *Keys
	ctx    context.Context
	sb     *store.AddBatch
	marker datastore.Key
	jobs   chan batchJob
	wg     sync.WaitGroup

	mu  sync.Mutex
	err error // the first failure
	// groups holds each record's entries by index, set as records are
	// stored: the record entry, then its scoped entries. Past the first
	// inMemoryGroups records they go to spool, encoded, instead (see
	// keep), so that a batch of any size holds little in memory.
	groups   [][]protocol.Entry
	spool    *store.Spool
	cids     []cid.Cid // each record's CID by index, set with its group
	dropped  map[int]bool
	accounts map[protocol.AccountID]AccountInfo
	keys     map[protocol.AccountID][]byte
	n        int
	done     bool
}

type batchJob struct {
	i  int
	nr NewRecord
}

// NewBatch starts a batch add of records authored by k. Records are
// encrypted and stored as they are added, on GOMAXPROCS workers; nothing
// is visible until Commit. ctx bounds the whole batch.
func (r *Repo) NewBatch(ctx context.Context, k *Keys) (*Batch, error) {
	// The marker (cleared once the record entries are committed, or the
	// records dropped) tells the next Open that an add was interrupted
	// between storing records and claiming them (unpinUnclaimed).
	marker, err := r.markAdding(ctx)
	if err != nil {
		return nil, err
	}
	sb, err := r.st.NewAddBatch(ctx)
	if err != nil {
		r.clearAdding(ctx, marker)
		return nil, err
	}
	workers := runtime.GOMAXPROCS(0)
	b := &Batch{r: r, k: k, ctx: ctx, sb: sb, marker: marker, jobs: make(chan batchJob, workers),
		dropped: map[int]bool{}, accounts: map[protocol.AccountID]AccountInfo{}, keys: map[protocol.AccountID][]byte{}}
	for range workers {
		b.wg.Go(b.work)
	}
	return b, nil
}

// Add queues a record and returns its index. The record's Body is read by
// a worker until Commit returns (a caller giving a stream keeps it open
// until then). An error here, or from Commit, is the batch's first
// failure (a *BatchError naming the record when one record failed): the
// batch is then good only for Abort.
func (b *Batch) Add(nr NewRecord) (int, error) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return 0, errBatchDone
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	i := b.n
	b.n++
	b.cids = append(b.cids, cid.Undef)
	if i < inMemoryGroups {
		b.groups = append(b.groups, nil)
	}
	b.mu.Unlock()
	select {
	case b.jobs <- batchJob{i: i, nr: nr}:
		return i, nil
	case <-b.ctx.Done():
		b.fail(b.ctx.Err())
		return 0, b.ctx.Err()
	}
}

// Drop leaves out the record Add numbered i: it is stored (Add may have
// begun) but dropped at Commit, not claimed.
func (b *Batch) Drop(i int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropped[i] = true
}

// Len returns how many records were added.
func (b *Batch) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

func (b *Batch) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
	}
}

func (b *Batch) failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err != nil
}

// work stores queued records until the queue closes; after a failure it
// only drains the queue.
func (b *Batch) work() {
	for job := range b.jobs {
		if b.failed() {
			continue
		}
		es, err := b.store(job.nr)
		if err == nil {
			err = b.keep(job.i, es)
		}
		if err != nil {
			b.fail(&BatchError{Index: job.i, Err: err})
		}
	}
}

// inMemoryGroups is how many records' entries a batch holds in memory;
// those of the records after them wait in a spool file.
const inMemoryGroups = 256

// keep holds record i's entries until Commit: in memory for the first
// inMemoryGroups records, encoded in the batch's spool for the others.
func (b *Batch) keep(i int, es []protocol.Entry) error {
	c := es[0].Body.(*protocol.Record).Record.Cid
	if i < inMemoryGroups {
		b.mu.Lock()
		b.groups[i], b.cids[i] = es, c
		b.mu.Unlock()
		return nil
	}
	enc, err := encodeGroup(es)
	if err != nil {
		return err
	}
	b.mu.Lock()
	if b.spool == nil && b.err == nil {
		b.spool, err = b.r.st.NewSpool()
	}
	sp := b.spool
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if sp == nil {
		return errBatchDone // failed meanwhile
	}
	if err := sp.Put(i, enc); err != nil {
		return err
	}
	b.mu.Lock()
	b.cids[i] = c
	b.mu.Unlock()
	return nil
}

// group returns record i's entries and their encoded size (as in a chain
// block).
func (b *Batch) group(i int) ([]protocol.Entry, int, error) {
	if i < inMemoryGroups {
		es := b.groups[i]
		b.groups[i] = nil
		n := 0
		for _, e := range es {
			enc, err := e.MarshalCBOR()
			if err != nil {
				return nil, 0, fmt.Errorf("encode entry: %w", err)
			}
			n += len(enc)
		}
		return es, n, nil
	}
	enc, ok, err := b.spool.Get(i)
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		return nil, 0, fmt.Errorf("record %d: its entries are missing from the batch's spool", i)
	}
	return decodeGroup(enc)
}

// encodeGroup encodes a record's entries for the spool: each entry's
// encoding after its length (uvarint).
func encodeGroup(es []protocol.Entry) ([]byte, error) {
	var out []byte
	for _, e := range es {
		enc, err := e.MarshalCBOR()
		if err != nil {
			return nil, fmt.Errorf("encode entry: %w", err)
		}
		out = binary.AppendUvarint(out, uint64(len(enc)))
		out = append(out, enc...)
	}
	return out, nil
}

// decodeGroup decodes what encodeGroup made, giving the entries (bodies
// decoded, without their encoded copies) and their encoded size.
func decodeGroup(data []byte) ([]protocol.Entry, int, error) {
	var es []protocol.Entry
	n := 0
	for len(data) > 0 {
		l, k := binary.Uvarint(data)
		if k <= 0 || l > uint64(len(data)-k) {
			return nil, 0, errors.New("spooled entries are corrupt")
		}
		var e protocol.Entry
		if err := e.UnmarshalCBOR(data[k : k+int(l)]); err != nil {
			return nil, 0, fmt.Errorf("spooled entry: %w", err)
		}
		if e.Body != nil {
			e.RawBody = nil // signing encodes the body again
		}
		es = append(es, e)
		n += int(l)
		data = data[k+int(l):]
	}
	return es, n, nil
}

// store prepares and stores one record, giving its record entry and
// the scoped entries for the subject's standing grantees whose scope
// holds it (standingEntries), which go in the same chain block.
func (b *Batch) store(nr NewRecord) ([]protocol.Entry, error) {
	if err := b.ctx.Err(); err != nil {
		return nil, err
	}
	p, err := b.r.prepare(b.ctx, b.k, nr, b.account)
	if err != nil {
		return nil, err
	}
	rec, key, err := storeRecord(b.ctx, b.sb, p, b.key)
	if err != nil {
		return nil, err
	}
	standing, err := b.r.standingEntries(b.ctx, rec.Record.Cid, p.subject, p.env, key, p.readers)
	if err != nil {
		return nil, err
	}
	return append([]protocol.Entry{protocol.NewEntry(rec)}, standing...), nil
}

// key returns an account's public key, decoded once per batch (every
// entry of the batch names the same few accounts).
func (b *Batch) key(id protocol.AccountID) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	k, ok := b.keys[id]
	if !ok {
		k = keyOf(id)
		b.keys[id] = k
	}
	return k
}

// account returns an account's info, looked up once per batch.
func (b *Batch) account(id protocol.AccountID) (AccountInfo, error) {
	b.mu.Lock()
	info, ok := b.accounts[id]
	b.mu.Unlock()
	if ok {
		return info, nil
	}
	info, err := b.r.Account(b.ctx, id)
	if err != nil {
		return AccountInfo{}, err
	}
	b.mu.Lock()
	b.accounts[id] = info
	b.mu.Unlock()
	return info, nil
}

// Commit waits for every record to be stored, then makes them durable and
// appends their record entries (but not the dropped ones') to the
// author's chain in one commit. It returns each record's CID by index
// (cid.Undef for a dropped one). On any error nothing is kept: every
// record the batch stored is dropped and the chain is unchanged.
func (b *Batch) Commit() ([]cid.Cid, error) {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return nil, errBatchDone
	}
	b.done = true
	b.mu.Unlock()
	close(b.jobs)
	b.wg.Wait()
	ctx := b.ctx
	defer b.r.clearAdding(ctx, b.marker)
	defer b.closeSpool()
	b.mu.Lock()
	err := b.err
	b.mu.Unlock()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		b.sb.Abort(ctx)
		return nil, err
	}
	// Dropped records are not pinned: the store deletes them.
	out := make([]cid.Cid, len(b.cids))
	var kept []int
	var roots []cid.Cid
	for i, c := range b.cids {
		if b.dropped[i] {
			b.sb.Discard(c)
			continue
		}
		out[i] = c
		kept = append(kept, i)
		roots = append(roots, c)
	}
	if err := b.sb.Commit(ctx); err != nil {
		return nil, err
	}
	// From here the kept records are pinned: a failure unpins and
	// deletes them.
	claimed := false
	defer func() {
		if claimed {
			return
		}
		for _, c := range roots {
			b.r.dropUnclaimed(ctx, c)
		}
	}()
	if len(kept) == 0 {
		claimed = true
		return out, nil
	}
	if err := b.r.indexRecords(ctx, roots); err != nil {
		return nil, err
	}
	// The groups go into chain blocks in order, one block in memory at a
	// time when the batch is big (appendFrom).
	var cut blockCutter
	next := 0
	blocks := func() ([]protocol.Entry, bool, error) {
		for next < len(kept) {
			g, n, err := b.group(kept[next])
			if err != nil {
				return nil, false, err
			}
			next++
			full, err := cut.add(g, n)
			if err != nil || full != nil {
				return full, err == nil, err
			}
		}
		last := cut.rest()
		return last, last != nil, nil
	}
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	if _, err := b.r.appendFrom(ctx, b.k, len(kept) >= stagedRecords, blocks); err != nil {
		return nil, err
	}
	claimed = true
	return out, nil
}

// stagedRecords is how many records make a batch add's commit staged
// (appendFrom): from about this many, holding all their record facts in
// one datastore batch in memory costs more than staging them on disk.
const stagedRecords = 512

// Abort drops every record the batch stored. After Commit it does
// nothing.
func (b *Batch) Abort() {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return
	}
	b.done = true
	b.err = errBatchDone
	b.mu.Unlock()
	close(b.jobs)
	b.wg.Wait()
	b.closeSpool()
	b.sb.Abort(b.ctx)
	b.r.clearAdding(b.ctx, b.marker)
}

// closeSpool removes the batch's spool file, if it has one.
func (b *Batch) closeSpool() {
	if b.spool != nil {
		_ = b.spool.Close()
	}
}

// prepared is a record checked and ready to store: its content, its
// envelope's encoding and its entry's fields but the content's CID, the
// sealed envelope and the wrapped keys.
type prepared struct {
	body    io.Reader
	env     *protocol.Envelope
	header  []byte
	readers []AccountInfo
	subject protocol.AccountID
	super   *protocol.Link
}

// prepare checks a record to add for k: its subject must be a known
// account, the record it supersedes a known record about the same
// subject, a FHIR record's content one JSON resource (checked before
// anything is stored, and against its clinical digest when it has one).
// It builds the envelope and the readers list. account looks accounts up.
func (r *Repo) prepare(ctx context.Context, k *Keys, nr NewRecord, account func(protocol.AccountID) (AccountInfo, error)) (*prepared, error) {
	subject := nr.Subject
	if subject == "" {
		subject = k.ID
	}
	if _, err := account(subject); err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	if nr.Supersedes.Defined() {
		a, err := r.AccessFor(ctx, nr.Supersedes, k.ID)
		if err != nil {
			return nil, err
		}
		if !a.Known || a.Subject != subject {
			return nil, fmt.Errorf("supersedes %s: not a known record about the same subject", nr.Supersedes)
		}
	}
	body := nr.Body
	if nr.Kind == protocol.KindFHIR {
		data, err := readFHIR(body, nr.FHIR)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(data)
	} else if nr.FHIR != nil {
		return nil, fmt.Errorf("a %s record carries no FHIR fields", nr.Kind)
	}
	env := &protocol.Envelope{Title: nr.Title, Kind: nr.Kind, MediaType: nr.MediaType, FileName: nr.FileName,
		Author: k.Public(), Subject: keyOf(subject), Created: r.now().UnixMilli(), FHIR: nr.FHIR}
	p := &prepared{body: body, env: env, subject: subject}
	if nr.Supersedes.Defined() {
		l := protocol.NewLink(nr.Supersedes)
		env.Supersedes, p.super = &l, &l
	}
	var err error
	if p.header, err = env.Header(); err != nil {
		return nil, err
	}
	if p.readers, err = r.recordReaders(ctx, k, &nr, subject, account); err != nil {
		return nil, err
	}
	return p, nil
}

// utf8BOM is a UTF-8 byte-order mark, which FHIR JSON may begin with.
var utf8BOM = []byte("\xef\xbb\xbf")

// readFHIR reads a FHIR record's content (at most protocol.MaxFHIRSize
// bytes) and checks it: one JSON resource (a leading byte-order mark is
// allowed and kept), whose SHA-256 is the clinical digest when one is
// given.
func readFHIR(body io.Reader, clin *protocol.Clinical) ([]byte, error) {
	var data []byte
	if br, ok := body.(*bytes.Reader); ok && br.Size() == int64(br.Len()) && br.Len() <= protocol.MaxFHIRSize {
		data = make([]byte, br.Len())
		br.Read(data)
	} else {
		var err error
		data, err = io.ReadAll(io.LimitReader(body, protocol.MaxFHIRSize+1))
		if err != nil {
			return nil, fmt.Errorf("read FHIR record: %w", err)
		}
	}
	rt, err := protocol.ValidateFHIR(bytes.TrimPrefix(data, utf8BOM))
	if err != nil {
		return nil, err
	}
	if clin != nil {
		if clin.ResourceType != rt {
			return nil, fmt.Errorf("FHIR: the envelope says %s, the resource is a %s", clin.ResourceType, rt)
		}
		if len(clin.Digest) > 0 {
			if sum := sha256.Sum256(data); !bytes.Equal(sum[:], clin.Digest) {
				return nil, errors.New("FHIR: the clinical digest is not the SHA-256 of the resource's bytes")
			}
		}
	}
	return data, nil
}

// recordReaders returns the accounts a new record's key is wrapped for:
// the subject, the author (k) and the accounts nr.CC names. This is the
// one place that decides who reads a record from its first entry.
func (r *Repo) recordReaders(ctx context.Context, k *Keys, nr *NewRecord, subject protocol.AccountID, account func(protocol.AccountID) (AccountInfo, error)) ([]AccountInfo, error) {
	subj, err := account(subject)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	readers := []AccountInfo{subj}
	if subject != k.ID {
		self, err := account(k.ID)
		if err != nil {
			return nil, err
		}
		readers = append(readers, self)
	}
	for _, id := range nr.CC {
		if id == subject || id == k.ID {
			continue
		}
		acct, err := account(id)
		if err != nil {
			return nil, fmt.Errorf("cc: %w", err)
		}
		readers = append(readers, acct)
	}
	return readers, nil
}

// storeRecord encrypts and stores a prepared record's content in sb, seals
// its envelope to the new record key and wraps that key for each reader,
// giving the record entry and the record key. key gives accounts' public
// keys (the entry's byte slices may be shared: nothing changes them).
func storeRecord(ctx context.Context, sb *store.AddBatch, p *prepared, key func(protocol.AccountID) []byte) (*protocol.Record, *age.X25519Identity, error) {
	added, err := sb.Add(ctx, p.body)
	if err != nil {
		return nil, nil, err
	}
	rec, err := newRecordEntry(p.header, added.Key, added.CID, key(p.subject), p.super, p.readers, key)
	if err != nil {
		return nil, nil, err
	}
	return rec, added.Key, nil
}

// A blockCutter cuts groups of entries (a record entry and its scoped
// entries), given in order, into as few chain blocks as the limits allow
// (protocol.MaxBlockSize bytes, protocol.MaxEntriesPerBlock entries),
// never splitting a group.
type blockCutter struct {
	cur  []protocol.Entry
	size int
}

// add adds a group whose entries encode to n bytes; when the group does
// not fit in the block being filled, it returns that block, full, and
// starts the next with the group.
func (bc *blockCutter) add(g []protocol.Entry, n int) ([]protocol.Entry, error) {
	const budget = protocol.MaxBlockSize - blockOverhead
	if n > budget || len(g) > protocol.MaxEntriesPerBlock {
		return nil, fmt.Errorf("a record's %d entries of %d bytes do not fit in a chain block", len(g), n)
	}
	var full []protocol.Entry
	if len(bc.cur) > 0 && (len(bc.cur)+len(g) > protocol.MaxEntriesPerBlock || bc.size+n > budget) {
		full, bc.cur, bc.size = bc.cur, nil, 0
	}
	bc.cur = append(bc.cur, g...)
	bc.size += n
	return full, nil
}

// rest returns the last block, nil when it is empty.
func (bc *blockCutter) rest() []protocol.Entry {
	out := bc.cur
	bc.cur, bc.size = nil, 0
	return out
}
