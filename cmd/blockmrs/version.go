package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is used.
var version = ""

var versionCmd = &command{name: "version", summary: "print the version", run: runVersion}

func runVersion(ctx context.Context, args []string) error {
	f := newFlags("version", "[flags]", `
Version prints the version of blockmrs and of the Go toolchain it was
built with.`, `
blockmrs version`)
	if _, err := f.parseArgs(args, false); err != nil {
		return err
	}
	v := version
	if v == "" {
		v = "devel"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	if f.json {
		return f.printJSON(struct {
			Version string `json:"version"`
			Go      string `json:"go"`
			OS      string `json:"os"`
			Arch    string `json:"arch"`
		}{v, runtime.Version(), runtime.GOOS, runtime.GOARCH})
	}
	fmt.Fprintf(f.out(), "blockmrs %s (%s %s/%s)\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
