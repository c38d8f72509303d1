package web

import (
	"io/fs"
	"path"
	"strings"
	"testing"
)

// Every page module is preloaded by index.html, so that a first load
// fetches the modules at once rather than one import level at a time; a
// new page that forgets its line fails here.
func TestEveryModulePreloaded(t *testing.T) {
	index, err := fs.ReadFile(appFS, "app/index.html")
	if err != nil {
		t.Fatal(err)
	}
	files, err := fs.ReadDir(appFS, "app")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if path.Ext(f.Name()) != ".js" || f.Name() == "main.js" {
			continue
		}
		n++
		if !strings.Contains(string(index), `<link rel="modulepreload" href="/`+f.Name()+`">`) {
			t.Errorf("index.html does not preload %s", f.Name())
		}
	}
	if n < 2 {
		t.Fatalf("only %d page modules found", n)
	}
}
