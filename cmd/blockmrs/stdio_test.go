package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCommandsUseInvocationStdio: command code writes and reads through
// its invocation (f.out(), f.errOut(), f.printJSON, f.openInput, ...),
// never the process's own stdio, which inside the daemon is the daemon's
// terminal or log, not the user's.
func TestCommandsUseInvocationStdio(t *testing.T) {
	allowed := map[string]bool{"invocation.go": true, "main.go": true}
	bad := regexp.MustCompile(`\bfmt\.Print(f|ln)?\(|\bos\.(Stdout|Stderr|Stdin)\b`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || allowed[name] {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			if code, _, _ := strings.Cut(line, "//"); bad.MatchString(code) {
				t.Errorf("%s:%d: %s\n\tuse f.out(), f.errOut(), f.printJSON or f.openInput: commands also run inside the daemon (see invocation.go)", name, i+1, strings.TrimSpace(line))
			}
		}
	}
}
