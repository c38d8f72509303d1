package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startExec runs an API server whose exec endpoint calls fn.
func startExec(t *testing.T, fn ExecFunc) *env {
	t.Helper()
	tok, err := LoadOrCreateToken(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(t)
	srv, err := Listen(t.Context(), Options{Addr: "127.0.0.1:0", Token: tok, Host: h, Accounts: failingAccounts{}, Exec: fn})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &env{srv: srv, token: tok, host: h}
}

func (e *env) client(t *testing.T) *Client {
	t.Helper()
	c, err := NewClient(writeClientFiles(t, e.srv.URL(), e.token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// upper is an ExecFunc: args[0] "echo" copies stdin to stdout upper-cased
// and says "done" on stderr, exit 3; "wait" blocks until cancelled; "pass"
// asks for a passphrase unless it got one.
func upper(gotCancel chan<- struct{}) ExecFunc {
	return func(ctx context.Context, req ExecRequest, stdin io.Reader, stdout, stderr io.Writer) int {
		switch req.Args[0] {
		case "echo":
			data, err := io.ReadAll(stdin)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			stdout.Write(bytes.ToUpper(data))
			fmt.Fprintf(stderr, "done in %s\n", req.Cwd)
			return 3
		case "wait":
			fmt.Fprintln(stdout, "waiting")
			<-ctx.Done()
			gotCancel <- struct{}{}
			return 1
		case "pass":
			if req.Passphrase == nil {
				stdout.(NeedPassphrase).NeedPassphrase("Passphrase for X: ")
				return 1
			}
			fmt.Fprintf(stdout, "got %s", req.Passphrase)
			return 0
		}
		return 2
	}
}

// countingReader counts the reads made of it.
type countingReader struct {
	r     io.Reader
	reads atomic.Int32
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.r.Read(p)
}

func TestExec(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	e := startExec(t, upper(cancelled))
	c := e.client(t)
	ctx := t.Context()

	// Stdin well over MaxBody streams through; output and status come back.
	in := bytes.Repeat([]byte("abc\n"), MaxBody/2)
	var out, errOut bytes.Buffer
	code, err := c.Exec(ctx, ExecRequest{Args: []string{"echo"}, Cwd: "/some/dir"}, bytes.NewReader(in), &out, &errOut)
	if err != nil || code != 3 {
		t.Fatalf("echo: %d %v", code, err)
	}
	if !bytes.Equal(out.Bytes(), bytes.ToUpper(in)) || errOut.String() != "done in /some/dir\n" {
		t.Fatalf("echo: %d bytes out, stderr %q", out.Len(), errOut.String())
	}

	// A command that does not read stdin leaves it unread.
	cr := &countingReader{r: strings.NewReader("unread")}
	out.Reset()
	if code, err := c.Exec(ctx, ExecRequest{Args: []string{"pass"}, Cwd: "/", Passphrase: []byte("pw")}, cr, &out, io.Discard); code != 0 || err != nil || out.String() != "got pw" {
		t.Fatalf("pass: %d %v %q", code, err, out.String())
	}
	if n := cr.reads.Load(); n != 0 {
		t.Fatalf("stdin read %d times by a command that never reads it", n)
	}

	// Passphrase needed.
	code, err = c.Exec(ctx, ExecRequest{Args: []string{"pass"}, Cwd: "/", TTY: true}, nil, io.Discard, io.Discard)
	var need *PassphraseNeededError
	if !errors.As(err, &need) || need.Prompt != "Passphrase for X: " || need.StdinUsed || code != 1 {
		t.Fatalf("pass without passphrase: %d %v", code, err)
	}

	// Cancelling the client cancels the command, whether it offered stdin
	// or not.
	for _, offer := range []bool{true, false} {
		cctx, cancel := context.WithCancel(ctx)
		var stdin io.Reader
		if offer {
			pr, pw := io.Pipe()
			defer pw.Close()
			stdin = pr
		}
		gotOut := make(chan struct{})
		w := writerFunc(func(p []byte) (int, error) {
			if string(p) == "waiting\n" {
				close(gotOut)
			}
			return len(p), nil
		})
		res := make(chan error, 1)
		go func() {
			_, err := c.Exec(cctx, ExecRequest{Args: []string{"wait"}, Cwd: "/"}, stdin, w, io.Discard)
			res <- err
		}()
		select {
		case <-gotOut:
		case <-time.After(10 * time.Second):
			t.Fatal("no output from wait")
		}
		cancel()
		if err := <-res; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled exec: %v", err)
		}
		select {
		case <-cancelled:
		case <-time.After(10 * time.Second):
			t.Fatalf("stdin offered %v: the command was not cancelled", offer)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestExecRefusals(t *testing.T) {
	e := startExec(t, upper(nil))
	_, port, _ := strings.Cut(e.srv.Addr(), ":")
	header := func(s string) req {
		return req{method: http.MethodPost, path: "/api/v1/exec", body: strings.NewReader(s), length: int64(len(s))}
	}
	good := `{"args":["echo"],"cwd":"/"}` + "\n"

	r := header(good)
	r.token = ptr("")
	wantError(t, e.do(t, r), http.StatusUnauthorized, "token")
	r = header(good)
	r.host = "evil.example:" + port
	wantError(t, e.do(t, r), http.StatusForbidden, "Host")
	r = header(good)
	r.header = map[string]string{"Origin": "http://evil.example"}
	wantError(t, e.do(t, r), http.StatusForbidden, "cross-origin")
	wantError(t, e.do(t, req{path: "/api/v1/exec"}), http.StatusMethodNotAllowed, "GET")

	for body, want := range map[string]string{
		"":           "empty body",
		"not json\n": "bad exec header",
		`{"args":["echo"],"cwd":"/","x":1}` + "\n": "unknown field",
		`{"args":[],"cwd":"/"}` + "\n":             "no args",
		`{"args":["echo"],"cwd":"rel"}` + "\n":     "absolute",
		`{"args":["echo"],"cwd":"/"} {}` + "\n":    "more than one",
	} {
		wantError(t, e.do(t, header(body)), http.StatusBadRequest, want)
	}
	big := `{"args":["` + strings.Repeat("a", MaxExecHeader) + `"],"cwd":"/"}` + "\n"
	wantError(t, e.do(t, header(big)), http.StatusRequestEntityTooLarge, "limit")

	// A server without an exec function.
	none := startExec(t, nil)
	wantError(t, none.do(t, header(good)), http.StatusNotImplemented, "no exec")
	if _, err := none.client(t).Exec(t.Context(), ExecRequest{Args: []string{"x"}, Cwd: "/"}, nil, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "no exec") {
		t.Fatalf("client against a server without exec: %v", err)
	}
}

// TestClientChecksProof: a server at api.addr that does not hold the
// token never receives it.
func TestClientChecksProof(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var sawToken atomic.Bool
	var requests atomic.Int32
	impostor := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Authorization") != "" {
			sawToken.Store(true)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"proof":"%s"}`, strings.Repeat("00", 32))
	})}
	go impostor.Serve(ln)
	t.Cleanup(func() { impostor.Close() })
	tok, err := LoadOrCreateToken(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(writeClientFiles(t, "http://"+ln.Addr().String(), tok))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(t.Context(), ExecRequest{Args: []string{"ls"}, Cwd: "/"}, nil, io.Discard, io.Discard); !errors.Is(err, ErrNotOurDaemon) {
		t.Fatalf("exec against an impostor: %v", err)
	}
	if _, err := c.Peers(t.Context()); !errors.Is(err, ErrNotOurDaemon) {
		t.Fatalf("peers against an impostor: %v", err)
	}
	if sawToken.Load() || requests.Load() == 0 {
		t.Fatalf("impostor saw the token: %v (requests %d)", sawToken.Load(), requests.Load())
	}

	// The real server proves it; the proof endpoint needs no token.
	e := startExec(t, upper(nil))
	var p Proof
	decode(t, e.do(t, req{path: "/api/v1/proof?nonce=" + strings.Repeat("ab", 32), token: ptr("")}), http.StatusOK, &p)
	wantError(t, e.do(t, req{path: "/api/v1/proof?nonce=12", token: ptr("")}), http.StatusBadRequest, "nonce")
	if _, err := e.client(t).Peers(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestExecShutdown: Shutdown cancels a running command and does not wait
// for it to end by itself; the client gets its exit status.
func TestExecShutdown(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	e := startExec(t, upper(cancelled))
	c := e.client(t)
	started := make(chan struct{})
	w := writerFunc(func(p []byte) (int, error) {
		if string(p) == "waiting\n" {
			close(started)
		}
		return len(p), nil
	})
	res := make(chan int, 1)
	go func() {
		code, _ := c.Exec(t.Context(), ExecRequest{Args: []string{"wait"}, Cwd: "/"}, nil, w, io.Discard)
		res <- code
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a command running: %v", err)
	}
	<-cancelled
	if code := <-res; code != 1 {
		t.Fatalf("exit status %d", code)
	}
}

// TestExecDaemonStopped: the connection ending before the exit status (the
// daemon killed mid-command; here the handler aborts) is ErrDaemonStopped,
// after the output that did arrive.
func TestExecDaemonStopped(t *testing.T) {
	e := startExec(t, func(ctx context.Context, req ExecRequest, stdin io.Reader, stdout, stderr io.Writer) int {
		fmt.Fprintln(stdout, "half done")
		panic(http.ErrAbortHandler) // the connection is cut, as by a kill
	})
	var out bytes.Buffer
	code, err := e.client(t).Exec(t.Context(), ExecRequest{Args: []string{"x"}, Cwd: "/"}, nil, &out, io.Discard)
	if !errors.Is(err, ErrDaemonStopped) || code != 1 {
		t.Fatalf("exit %d, err %v; want ErrDaemonStopped", code, err)
	}
	if out.String() != "half done\n" {
		t.Fatalf("stdout %q", out.String())
	}
	if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "may or may not have taken effect") {
		t.Fatalf("message %q", err)
	}
}
