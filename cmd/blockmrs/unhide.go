package main

import "context"

// unhide shares its implementation with hide (hide.go).
var unhideCmd = &command{name: "unhide", summary: "show hidden records in your listings again", run: func(ctx context.Context, args []string) error {
	return runHide(ctx, args, false)
}}
