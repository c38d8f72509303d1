package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	cid "github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// Cat streams the bytes of the UnixFS file (or raw block) c: for a record,
// its ciphertext. Blocks are read and verified one at a time as the stream
// is consumed; a missing or corrupt block surfaces from Read as a
// *BlockError naming it.
func (s *Store) Cat(ctx context.Context, c cid.Cid) (io.ReadCloser, error) {
	dr, err := s.open(ctx, c)
	if err != nil {
		return nil, wrapOp("cat", c, err)
	}
	return &catReader{dr: dr, root: c}, nil
}

func (s *Store) open(ctx context.Context, c cid.Cid) (uio.DagReader, error) {
	leave, err := s.enter()
	if err != nil {
		return nil, err
	}
	defer leave()
	nd, err := s.dag.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	return uio.NewDagReader(ctx, nd, orderedGetter{s.dag})
}

// orderedGetter replaces merkledag's GetMany, which drops blocks that fail
// to load and then reports only "failed to fetch all nodes", with one that
// loads in order and passes on the first error as is (a *BlockError
// naming the block). The DAG reader prefetches at most 10 children ahead.
type orderedGetter struct {
	ipld.NodeGetter
}

func (g orderedGetter) GetMany(ctx context.Context, keys []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(keys))
	go func() {
		defer close(out)
		for _, k := range keys {
			nd, err := g.Get(ctx, k)
			if err != nil {
				out <- &ipld.NodeOption{Err: err}
				return
			}
			out <- &ipld.NodeOption{Node: nd}
		}
	}()
	return out
}

type catReader struct {
	dr   uio.DagReader
	root cid.Cid
}

func (r *catReader) Read(p []byte) (int, error) {
	n, err := r.dr.Read(p)
	if err != nil && err != io.EOF {
		err = wrapOp("cat", r.root, err)
	}
	return n, err
}

func (r *catReader) Close() error { return r.dr.Close() }

// Decrypt streams the plaintext of record c, decrypting its ciphertext with
// id. Errors name their cause: a *BlockError for a missing or corrupt
// block, [ErrWrongKey] when id is not the record's recipient, and
// [ErrNotAuthentic] when age rejects the ciphertext (tampered, truncated
// or not age at all). Plaintext is only released in age's authenticated
// 64 KiB chunks, but a stream cut short by an error may have delivered
// earlier chunks: treat the record as valid only after reading to io.EOF.
func (s *Store) Decrypt(ctx context.Context, c cid.Cid, id age.Identity) (io.ReadCloser, error) {
	dr, err := s.open(ctx, c)
	if err != nil {
		return nil, wrapOp("decrypt", c, err)
	}
	src := &errTap{r: dr}
	pt, err := age.Decrypt(src, id)
	if err != nil {
		_ = dr.Close()
		return nil, decryptErr(c, src, err)
	}
	return &decryptReader{r: pt, src: src, closer: dr, root: c}, nil
}

type decryptReader struct {
	r      io.Reader
	src    *errTap
	closer io.Closer
	root   cid.Cid
}

func (d *decryptReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = decryptErr(d.root, d.src, err)
	}
	return n, err
}

func (d *decryptReader) Close() error { return d.closer.Close() }

// decryptErr classifies an error from age: storage errors (seen by the tap
// on age's source) are passed through, everything else age says is an
// authentication failure or a key mismatch.
func decryptErr(c cid.Cid, src *errTap, err error) error {
	if src.err != nil {
		return wrapOp("decrypt", c, src.err)
	}
	var nomatch *age.NoIdentityMatchError
	if errors.As(err, &nomatch) {
		return fmt.Errorf("store: decrypt %s: %w: %w", c, ErrWrongKey, err)
	}
	return fmt.Errorf("store: decrypt %s: %w: %w", c, ErrNotAuthentic, err)
}

// errTap remembers the first non-EOF error of its source.
type errTap struct {
	r   io.Reader
	err error
}

func (t *errTap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}
