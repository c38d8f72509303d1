package api

// POST /api/v1/exec runs one command line inside the daemon, against the
// daemon's open repo, as Kubo's CLI runs its commands inside its daemon.
// The request body is one JSON line (ExecHeader) and then, when the header
// says so, the command's stdin to EOF; the response is a stream of frames
// (stdout, stderr, a passphrase request, the exit status), each flushed as
// it is written. Request and response stream at the same time (full
// duplex), so `tar c . | blockmrs add -` and progress output both flow.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"time"
)

// ErrStopping is the cause (context.Cause) of the cancellation of a
// command running through exec when the server shuts down.
var ErrStopping = errors.New("cancelled: the daemon is stopping")

// Paths of the exec endpoint and of the token proof.
const (
	execPath  = "/api/v1/exec"
	proofPath = "/api/v1/proof"
)

// Limits of the exec endpoint.
const (
	// MaxExecHeader bounds the JSON line that opens an exec request. The
	// stdin that follows it is not bounded (MaxBody does not apply).
	MaxExecHeader = 64 << 10
	// MaxExecArgs bounds the number of arguments of one command.
	MaxExecArgs = 4096
	// MaxFrame is the largest frame payload the server writes and the
	// client accepts.
	MaxFrame = 1 << 20
	// ExecStdinIdle is how long the server waits for the next stdin bytes
	// of a running command before it gives up on the client.
	ExecStdinIdle = 10 * time.Minute
)

// Frame kinds of the exec response stream. A frame is its kind (one
// byte), its payload length (unsigned varint, at most MaxFrame) and the
// payload.
const (
	// FrameStdout carries bytes the command wrote to its stdout.
	FrameStdout byte = 1
	// FrameStderr carries bytes the command wrote to its stderr.
	FrameStderr byte = 2
	// FrameExit ends the stream; its payload is the exit status as an
	// unsigned varint.
	FrameExit byte = 3
	// FramePassphrase says the command stopped because it needs a
	// passphrase the request did not carry and that the client, having a
	// terminal, can ask for; the payload is the prompt ("Passphrase for
	// NAME (…ID): "). The stream then ends with FrameExit, and the client
	// may send the request again with the passphrase.
	FramePassphrase byte = 4
	// FrameStdin asks the client, which offered stdin (ExecHeader.Stdin),
	// to start sending it: the command began reading its stdin. Empty
	// payload. A client sends no stdin before it, so a command that never
	// reads stdin leaves the client's stdin unread, as it would locally.
	FrameStdin byte = 5
)

// ExecHeader is the JSON line that opens an exec request.
type ExecHeader struct {
	// Args is the command line without the program name, e.g.
	// ["add", "scan.pdf", "--title", "X-ray"].
	Args []string `json:"args"`
	// Cwd is the client's working folder, an absolute path: relative
	// file names in Args are resolved against it.
	Cwd string `json:"cwd"`
	// Passphrase, when present, unlocks the acting account's keys (the
	// client's $BLOCKMRS_PASSPHRASE, or what it asked on its terminal).
	Passphrase *string `json:"passphrase,omitempty"`
	// Stdin says the client offers a stdin: once the server sends
	// FrameStdin, the client sends its stdin after the header line, to
	// EOF. Without it the command's stdin is empty.
	Stdin bool `json:"stdin,omitempty"`
	// TTY says the client has a terminal: a command that needs a
	// passphrase not given answers with FramePassphrase instead of
	// failing.
	TTY bool `json:"tty,omitempty"`
	// StdoutTTY says the client's stdout is a terminal (commands that
	// refuse to print binary data to a terminal check it).
	StdoutTTY bool `json:"stdout_tty,omitempty"`
}

// ExecRequest is a command to run, as the ExecFunc receives it.
type ExecRequest struct {
	// Args is the command line without the program name.
	Args []string
	// Cwd is the client's absolute working folder.
	Cwd string
	// Passphrase is the passphrase the client sent; nil when it sent none
	// (an empty passphrase is a non-nil empty slice).
	Passphrase []byte
	// TTY says the client can ask its user for a passphrase (see
	// NeedPassphrase).
	TTY bool
	// StdoutTTY says the client's stdout is a terminal.
	StdoutTTY bool
}

// NeedPassphrase is what an ExecFunc writes to ask the client for a
// passphrase: the server turns it into a FramePassphrase frame.
type NeedPassphrase interface {
	// NeedPassphrase sends prompt to the client as a FramePassphrase.
	NeedPassphrase(prompt string) error
}

// ExecFunc runs one command inside the daemon. It reads the command's
// stdin from stdin, writes its output to stdout and stderr and returns
// the exit status; it must stop when ctx ends (the client went away, or
// the server shuts down: then context.Cause(ctx) is ErrStopping). A read
// of stdin waiting when ctx ends fails with ctx's error.
// stdout also implements NeedPassphrase. It must not keep stdin, stdout
// or stderr after it returns.
type ExecFunc func(ctx context.Context, req ExecRequest, stdin io.Reader, stdout, stderr io.Writer) int

// frameWriter writes frames to the response, one at a time, flushing
// each; the first failure sticks and cancels the command.
type frameWriter struct {
	mu     sync.Mutex
	w      io.Writer
	rc     *http.ResponseController
	err    error
	cancel context.CancelFunc
}

func (fw *frameWriter) frame(kind byte, p []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.err != nil {
		return fw.err
	}
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = kind
	n := 1 + binary.PutUvarint(hdr[1:], uint64(len(p)))
	_, err := fw.w.Write(hdr[:n])
	if err == nil {
		_, err = fw.w.Write(p)
	}
	if err == nil {
		err = fw.rc.Flush()
	}
	if err != nil {
		fw.err = fmt.Errorf("exec: client gone: %w", err)
		fw.cancel()
	}
	return fw.err
}

// write splits p into frames of at most MaxFrame bytes.
func (fw *frameWriter) write(kind byte, p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := min(len(p), MaxFrame)
		if err := fw.frame(kind, p[:c]); err != nil {
			return n, err
		}
		n += c
		p = p[c:]
	}
	return n, nil
}

// stream is the command's stdout or stderr.
type stream struct {
	fw   *frameWriter
	kind byte
}

func (s stream) Write(p []byte) (int, error) { return s.fw.write(s.kind, p) }

// NeedPassphrase implements NeedPassphrase.
func (s stream) NeedPassphrase(prompt string) error {
	return s.fw.frame(FramePassphrase, []byte(prompt))
}

// stdinReader is the command's stdin: it asks the client for it
// (FrameStdin) on the first read, then reads what pumpStdin passes on.
type stdinReader struct {
	pr    *io.PipeReader
	fw    *frameWriter
	asked bool
}

func (s *stdinReader) Read(p []byte) (int, error) {
	if !s.asked {
		s.asked = true
		if err := s.fw.frame(FrameStdin, nil); err != nil {
			return 0, err
		}
	}
	return s.pr.Read(p)
}

// pumpStdin reads the rest of the request body into pw from the start, so
// that a client that goes away (Ctrl-C) is noticed even while the command
// reads no stdin: the read fails and the command is cancelled. The client
// sends nothing before FrameStdin, so the read just waits until then. The
// read deadline is extended before each read.
func pumpStdin(body io.Reader, rc *http.ResponseController, pw *io.PipeWriter, cancel context.CancelFunc) {
	buf := make([]byte, 32<<10)
	for {
		_ = rc.SetReadDeadline(time.Now().Add(ExecStdinIdle))
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := pw.Write(buf[:n]); werr != nil {
				return // the command is done
			}
		}
		if errors.Is(err, io.EOF) {
			pw.Close()
			return
		}
		if err != nil {
			cancel()
			pw.CloseWithError(fmt.Errorf("exec: reading stdin from the client: %w", err))
			return
		}
	}
}

// readExecHeader reads and checks the JSON line that opens an exec
// request. It writes the error response and returns false on failure.
func readExecHeader(w http.ResponseWriter, br *bufio.Reader, h *ExecHeader) bool {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		writeError(w, http.StatusRequestEntityTooLarge, "exec header line is over the %d-byte limit", MaxExecHeader)
		return false
	}
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		if errors.Is(err, io.EOF) {
			writeError(w, http.StatusBadRequest, "bad exec header: empty body")
		} else {
			writeError(w, http.StatusBadRequest, "bad exec header: %v", err)
		}
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(h); err != nil {
		writeError(w, http.StatusBadRequest, "bad exec header: %v", err)
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "bad exec header: more than one JSON value on the line")
		return false
	}
	switch {
	case len(h.Args) == 0:
		writeError(w, http.StatusBadRequest, "bad exec header: no args")
	case len(h.Args) > MaxExecArgs:
		writeError(w, http.StatusBadRequest, "bad exec header: over %d args", MaxExecArgs)
	case !filepath.IsAbs(h.Cwd):
		writeError(w, http.StatusBadRequest, "bad exec header: cwd %q is not an absolute path", h.Cwd)
	default:
		return true
	}
	return false
}

// exec serves POST /api/v1/exec.
func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	if s.opts.Exec == nil {
		writeError(w, http.StatusNotImplemented, "this daemon runs no commands (no exec function)")
		return
	}
	rc := http.NewResponseController(w)
	br := bufio.NewReaderSize(r.Body, MaxExecHeader)
	var h ExecHeader
	if !readExecHeader(w, br, &h) {
		return
	}
	// The command may run for long: no write deadline; stdin reads get a
	// deadline each (stdinReader).
	if err := rc.EnableFullDuplex(); err != nil {
		writeError(w, http.StatusInternalServerError, "exec: %v", err)
		return
	}
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Now().Add(ExecStdinIdle))

	ctx, cancelCause := context.WithCancelCause(r.Context())
	cancel := func() { cancelCause(nil) }
	defer cancel()
	// Shutdown cancels the command, saying why.
	defer context.AfterFunc(s.stopping, func() { cancelCause(ErrStopping) })()
	req := ExecRequest{Args: h.Args, Cwd: h.Cwd, TTY: h.TTY, StdoutTTY: h.StdoutTTY}
	if h.Passphrase != nil {
		req.Passphrase = []byte(*h.Passphrase)
	}
	fw := &frameWriter{w: w, rc: rc, cancel: cancel}
	var stdin io.Reader = eofReader{}
	if h.Stdin {
		pr, pw := io.Pipe()
		pumped := make(chan struct{})
		go func() {
			defer close(pumped)
			pumpStdin(br, rc, pw, cancel)
		}()
		defer func() {
			// No reads of the body after the handler returns: unblock a
			// read in flight and wait for the pump.
			pr.Close()
			_ = rc.SetReadDeadline(time.Now())
			<-pumped
		}()
		// A command cancelled while it waits for the client's stdin
		// stops waiting.
		defer context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })()
		stdin = &stdinReader{pr: pr, fw: fw}
	}
	w.Header().Set("Content-Type", "application/vnd.blockmrs.exec")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	code := s.opts.Exec(ctx, req, stdin, stream{fw, FrameStdout}, stream{fw, FrameStderr})
	if code < 0 {
		code = 1
	}
	var buf [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(buf[:], uint64(code))
	if err := fw.frame(FrameExit, buf[:n]); err != nil {
		s.log.Debug("exec: exit status not delivered", "err", err)
	}
	clear(req.Passphrase)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// Proof is the body of GET /api/v1/proof: the server's proof that it holds
// the token, for a client that has not sent it yet.
type Proof struct {
	// Proof is hex HMAC-SHA256 keyed with the token over ProofMessage.
	Proof string `json:"proof"`
}

// proofNonceBytes is the length of the client's nonce before hex encoding.
const proofNonceBytes = 32

// ProofMessage is what the token proof signs: a fixed label, the
// server's base URL as the client dialled it (http://HOST:PORT, from the
// Host header the server accepted, so a process on another port cannot
// relay the real daemon's answer) and the client's nonce in hex.
func ProofMessage(base, nonce string) []byte {
	return []byte("blockmrs api token proof v1\n" + base + "\n" + nonce)
}

func proofMAC(token, base, nonce string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write(ProofMessage(base, nonce))
	return m.Sum(nil)
}

// proof serves GET /api/v1/proof?nonce=HEX without the token (the Host
// and Origin checks apply): the client checks the answer before it sends
// the token anywhere, so a process that took over the port of a daemon
// that died learns nothing.
func (s *Server) proof(w http.ResponseWriter, r *http.Request) {
	nonce := r.URL.Query().Get("nonce")
	if raw, err := hex.DecodeString(nonce); err != nil || len(raw) != proofNonceBytes {
		writeError(w, http.StatusBadRequest, "nonce must be %d hex characters", 2*proofNonceBytes)
		return
	}
	writeJSON(w, http.StatusOK, Proof{Proof: hex.EncodeToString(proofMAC(s.opts.Token, "http://"+r.Host, nonce))})
}

// newNonce returns a fresh proof nonce in hex.
func newNonce() string {
	b := make([]byte, proofNonceBytes)
	rand.Read(b)
	return hex.EncodeToString(b)
}
