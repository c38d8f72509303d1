// Command sidebyside runs shell-free command pipelines side by side and
// reports, for each, its wall time, peak memory and throughput against a
// baseline. scripts/bench.sh uses it to compare blockmrs with the stock
// tools (age piped into Kubo's ipfs).
//
// Usage:
//
//	sidebyside [-reps N] [-drop-caches] [-json FILE] SPEC.json
//
// A pipeline is a list of stages, each an argv list run directly (no
// shell). Stage i's stdout is connected to stage i+1's stdin with
// [os.Pipe], so the bytes pass from process to process through the kernel
// only. The timed run starts just before the first process is started and
// ends when the last one has exited. The peak resident set size of each
// process is read from its rusage (ru_maxrss); a pipeline's peak is the sum
// of its stages' peaks, since they run at the same time.
//
// The spec groups pipelines into comparisons, one of which may be the
// baseline the others' throughput is divided by:
//
//	{
//	  "reps": 3,
//	  "comparisons": [{
//	    "name": "add",
//	    "bytes": 268435456,
//	    "pipelines": [{
//	      "name": "stock age|ipfs add",
//	      "baseline": true,
//	      "env": ["IPFS_PATH=/tmp/kubo"],
//	      "stages": [["age", "-r", "age1...", "in.bin"], ["ipfs", "add", "-Q"]],
//	      "stdout": "out/stock.{rep}.cid"
//	    }]
//	  }]
//	}
//
// "before" lists commands run untimed before each repetition (with the
// pipeline's env), such as emptying a cache the timed run must not find
// full. "sidebyside node ..." (node.go) sets up and runs BlockMRS
// node-to-node fetches for these pipelines.
//
// "bytes" is the payload size throughput is computed from (MB/s, 10^6
// bytes per second). "stdin" and "stdout" name files for the first stage's
// input and the last stage's output (default /dev/null); stderr is kept and
// shown if a stage fails. "env" entries are added to the environment.
//
// In args, env, stdin and stdout, "{rep}" becomes the repetition number
// (1-based) and "{file:PATH}" becomes the contents of PATH with surrounding
// white space trimmed, read just before the run (so a pipeline can use a
// CID an earlier pipeline in the same repetition printed).
//
// Repetitions are interleaved: repetition 1 of every pipeline of every
// comparison in spec order, then repetition 2, and so on, so that drift in
// the machine's state (other load, a filling disk) spreads over all of
// them. With -drop-caches the page cache is written back and dropped before
// every run (needs root: sync, then 3 to /proc/sys/vm/drop_caches); the
// report says whether that happened.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Spec is the JSON input.
type Spec struct {
	Reps        int          `json:"reps"`
	Comparisons []Comparison `json:"comparisons"`
}

// Comparison is a set of pipelines doing the same work on the same payload.
type Comparison struct {
	Name      string     `json:"name"`
	Bytes     int64      `json:"bytes"`
	Pipelines []Pipeline `json:"pipelines"`
}

// Pipeline is a named list of stages connected stdout to stdin.
type Pipeline struct {
	Name     string     `json:"name"`
	Baseline bool       `json:"baseline,omitempty"`
	Env      []string   `json:"env,omitempty"`
	Stages   [][]string `json:"stages"`
	Stdin    string     `json:"stdin,omitempty"`
	Stdout   string     `json:"stdout,omitempty"`
	// Before lists commands run, untimed and one after the other, before
	// each repetition (before the page cache is dropped).
	Before [][]string `json:"before,omitempty"`
}

// Run is the measurement of one repetition of a pipeline.
type Run struct {
	Wall time.Duration `json:"wall_ns"`
	// MaxRSS is each stage's peak resident set size in bytes.
	MaxRSS []int64 `json:"max_rss_bytes"`
	// CPU is each stage's user plus system time.
	CPU []time.Duration `json:"cpu_ns"`
}

// Result holds every run of one pipeline.
type Result struct {
	Comparison string `json:"comparison"`
	Pipeline   string `json:"pipeline"`
	Baseline   bool   `json:"baseline,omitempty"`
	Bytes      int64  `json:"bytes"`
	Runs       []Run  `json:"runs"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "node" {
		if err := nodeMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "sidebyside:", err)
			os.Exit(1)
		}
		return
	}
	reps := flag.Int("reps", 0, "repetitions per pipeline (overrides the spec's \"reps\"; default 3)")
	drop := flag.Bool("drop-caches", false, "drop the page cache before every run (needs root)")
	jsonOut := flag.String("json", "", "also write every run's raw numbers to `FILE`")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: sidebyside [-reps N] [-drop-caches] [-json FILE] SPEC.json\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *reps, *drop, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "sidebyside:", err)
		os.Exit(1)
	}
}

func run(specPath string, reps int, drop bool, jsonOut string) error {
	spec, err := readSpec(specPath)
	if err != nil {
		return err
	}
	if reps > 0 {
		spec.Reps = reps
	}
	if spec.Reps <= 0 {
		spec.Reps = 3
	}

	cacheNote := "page cache: not dropped"
	if drop {
		if err := dropCaches(); err != nil {
			cacheNote = fmt.Sprintf("page cache: NOT dropped (%v)", err)
			drop = false
		} else {
			cacheNote = "page cache: written back and dropped before every run"
		}
	}
	fmt.Fprintln(os.Stderr, "sidebyside:", cacheNote)

	var results []*Result
	for _, c := range spec.Comparisons {
		for _, p := range c.Pipelines {
			results = append(results, &Result{Comparison: c.Name, Pipeline: p.Name, Baseline: p.Baseline, Bytes: c.Bytes})
		}
	}
	for rep := 1; rep <= spec.Reps; rep++ {
		i := 0
		for _, c := range spec.Comparisons {
			for _, p := range c.Pipelines {
				if err := runBefore(p, rep); err != nil {
					return fmt.Errorf("%s / %s, rep %d: before: %w", c.Name, p.Name, rep, err)
				}
				if drop {
					if err := dropCaches(); err != nil {
						return fmt.Errorf("drop caches: %w", err)
					}
				}
				r, err := runPipeline(p, rep)
				if err != nil {
					return fmt.Errorf("%s / %s, rep %d: %w", c.Name, p.Name, rep, err)
				}
				fmt.Fprintf(os.Stderr, "sidebyside: %-12s %-34s rep %d: %6.2fs\n", c.Name, p.Name, rep, r.Wall.Seconds())
				results[i].Runs = append(results[i].Runs, r)
				i++
			}
		}
	}

	fmt.Printf("# %d repetitions each; %s\n", spec.Reps, cacheNote)
	printTable(os.Stdout, results)
	if jsonOut != "" {
		b, err := json.MarshalIndent(struct {
			Reps       int       `json:"reps"`
			CacheNote  string    `json:"page_cache"`
			Results    []*Result `json:"results"`
			FinishedAt time.Time `json:"finished_at"`
		}{spec.Reps, cacheNote, results, time.Now().UTC()}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func readSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, c := range s.Comparisons {
		if c.Bytes <= 0 {
			return nil, fmt.Errorf("%s: comparison %q: bytes must be positive", path, c.Name)
		}
		baselines := 0
		for _, p := range c.Pipelines {
			if len(p.Stages) == 0 || slices.ContainsFunc(p.Stages, func(st []string) bool { return len(st) == 0 }) {
				return nil, fmt.Errorf("%s: %s / %s: empty stage list or stage", path, c.Name, p.Name)
			}
			if p.Baseline {
				baselines++
			}
		}
		if baselines > 1 {
			return nil, fmt.Errorf("%s: comparison %q has %d baselines", path, c.Name, baselines)
		}
	}
	return &s, nil
}

// runBefore runs p's untimed commands for repetition rep.
func runBefore(p Pipeline, rep int) error {
	for _, argv := range p.Before {
		if len(argv) == 0 {
			continue
		}
		args := make([]string, len(argv))
		for i, a := range argv {
			var err error
			if args[i], err = expand(a, rep); err != nil {
				return err
			}
		}
		cmd := exec.Command(args[0], args[1:]...)
		env := os.Environ()
		for _, e := range p.Env {
			x, err := expand(e, rep)
			if err != nil {
				return err
			}
			env = append(env, x)
		}
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", filepath.Base(args[0]), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// dropCaches writes dirty pages back and drops the clean page cache,
// dentries and inodes.
func dropCaches() error {
	syscall.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0)
}

// expand substitutes {rep} and {file:PATH} in s.
func expand(s string, rep int) (string, error) {
	s = strings.ReplaceAll(s, "{rep}", strconv.Itoa(rep))
	for {
		i := strings.Index(s, "{file:")
		if i < 0 {
			return s, nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("unterminated {file: in %q", s)
		}
		b, err := os.ReadFile(s[i+len("{file:") : i+j])
		if err != nil {
			return "", err
		}
		s = s[:i] + strings.TrimSpace(string(b)) + s[i+j+1:]
	}
}

// runPipeline starts every stage of p, connected by pipes, waits for all of
// them and returns the measurement. Any stage exiting unsuccessfully is an
// error carrying the tail of its stderr.
func runPipeline(p Pipeline, rep int) (Run, error) {
	var expandErr error
	x := func(s string) string {
		out, err := expand(s, rep)
		if err != nil && expandErr == nil {
			expandErr = err
		}
		return out
	}

	cmds := make([]*exec.Cmd, len(p.Stages))
	stderrs := make([]*tailBuffer, len(p.Stages))
	env := os.Environ()
	for _, e := range p.Env {
		env = append(env, x(e))
	}
	for i, st := range p.Stages {
		args := make([]string, len(st))
		for j, a := range st {
			args[j] = x(a)
		}
		cmds[i] = exec.Command(args[0], args[1:]...)
		cmds[i].Env = env
		stderrs[i] = &tailBuffer{max: 4096}
		cmds[i].Stderr = stderrs[i]
	}
	stdinPath, stdoutPath := orNull(x(p.Stdin)), orNull(x(p.Stdout))
	if expandErr != nil {
		return Run{}, expandErr
	}

	// Files the parent must close once the children have them.
	var parentFiles []*os.File
	closeParent := func() {
		for _, f := range parentFiles {
			f.Close()
		}
		parentFiles = nil
	}
	defer closeParent()

	in, err := os.Open(stdinPath)
	if err != nil {
		return Run{}, err
	}
	parentFiles = append(parentFiles, in)
	cmds[0].Stdin = in
	out, err := os.OpenFile(stdoutPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return Run{}, err
	}
	parentFiles = append(parentFiles, out)
	cmds[len(cmds)-1].Stdout = out
	for i := 0; i+1 < len(cmds); i++ {
		r, w, err := os.Pipe()
		if err != nil {
			return Run{}, err
		}
		parentFiles = append(parentFiles, r, w)
		cmds[i].Stdout = w
		cmds[i+1].Stdin = r
	}

	start := time.Now()
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			// Reap what already runs: closing our pipe ends lets it
			// see EOF or EPIPE.
			closeParent()
			for _, started := range cmds[:i] {
				_ = started.Process.Kill()
				_ = started.Wait()
			}
			return Run{}, err
		}
	}
	// The children hold their own copies now; without closing ours a
	// reader would never see EOF.
	closeParent()
	waitErrs := make([]error, len(cmds))
	for i, c := range cmds {
		waitErrs[i] = c.Wait()
	}
	r := Run{Wall: time.Since(start)}

	for i, c := range cmds {
		if waitErrs[i] != nil {
			return Run{}, fmt.Errorf("stage %d (%s): %v: %s", i+1, filepath.Base(c.Path), waitErrs[i], strings.TrimSpace(stderrs[i].String()))
		}
		ru, _ := c.ProcessState.SysUsage().(*syscall.Rusage)
		var rss int64
		if ru != nil {
			rss = ru.Maxrss * 1024 // KiB on Linux
		}
		r.MaxRSS = append(r.MaxRSS, rss)
		r.CPU = append(r.CPU, c.ProcessState.UserTime()+c.ProcessState.SystemTime())
	}
	return r, nil
}

func orNull(path string) string {
	if path == "" {
		return os.DevNull
	}
	return path
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// stats summarises a pipeline's runs.
type stats struct {
	median, min time.Duration
	mbps        float64 // at the median wall time
	peakRSS     int64   // max over runs of the sum over stages
	stageRSS    []int64 // max over runs, per stage
	cpu         time.Duration
}

func summarise(r *Result) stats {
	walls := make([]time.Duration, len(r.Runs))
	cpus := make([]time.Duration, len(r.Runs))
	var s stats
	for i, run := range r.Runs {
		walls[i] = run.Wall
		var sum int64
		for j, rss := range run.MaxRSS {
			sum += rss
			if j >= len(s.stageRSS) {
				s.stageRSS = append(s.stageRSS, 0)
			}
			s.stageRSS[j] = max(s.stageRSS[j], rss)
		}
		s.peakRSS = max(s.peakRSS, sum)
		for _, c := range run.CPU {
			cpus[i] += c
		}
	}
	s.median, s.min = median(walls), slices.Min(walls)
	s.cpu = median(cpus)
	s.mbps = float64(r.Bytes) / 1e6 / s.median.Seconds()
	return s
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}

// printTable writes one row per pipeline; "vs base" is its median
// throughput divided by its comparison's baseline's.
func printTable(w io.Writer, results []*Result) {
	base := map[string]float64{}
	all := map[*Result]stats{}
	for _, r := range results {
		s := summarise(r)
		all[r] = s
		if r.Baseline {
			base[r.Comparison] = s.mbps
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "comparison\tpipeline\tsize MiB\tmedian s\tmin s\tMB/s\tvs base\tpeak RSS MiB\tRSS per stage MiB\tCPU s\t")
	for _, r := range results {
		s := all[r]
		ratio := "base"
		if !r.Baseline {
			ratio = "-"
			if b, ok := base[r.Comparison]; ok {
				ratio = fmt.Sprintf("%.2fx", s.mbps/b)
			}
		}
		per := make([]string, len(s.stageRSS))
		for i, v := range s.stageRSS {
			per[i] = fmt.Sprintf("%.0f", mib(v))
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.2f\t%.2f\t%.0f\t%s\t%.0f\t%s\t%.2f\t\n",
			r.Comparison, r.Pipeline, mib(r.Bytes), s.median.Seconds(), s.min.Seconds(),
			s.mbps, ratio, mib(s.peakRSS), strings.Join(per, "+"), s.cpu.Seconds())
	}
	tw.Flush()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
