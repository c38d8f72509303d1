package main

import (
	"slices"
	"testing"

	"github.com/blockmrs/blockmrs/keyshare"
	"github.com/blockmrs/blockmrs/node/api"
)

// device and replica add|rm|ls --json and log --json through a running
// daemon print what the API's devices and log endpoints answer.
func TestDevicesThroughCLIAndAPI(t *testing.T) {
	ctx := t.Context()
	p := newNode(t, "")
	p.initAccount("--name", "Pat", "--role", "patient", "--no-passphrase")
	startAPIDaemon(t, p)
	pc, err := api.NewClient(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	const laptop = "12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"
	var added api.NodeSet
	p.json(&added, "device", "add", laptop, "--name", "laptop", "--json")
	if added.PeerID != laptop || added.Removed || added.Block == "" {
		t.Fatalf("device add --json: %+v", added)
	}
	list, err := pc.Devices(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	// (the daemon declared its own node as a device too)
	if !slices.ContainsFunc(list.Devices, func(d keyshare.DeviceInfo) bool { return d.PeerID == laptop && d.Name == "laptop" }) || len(list.Replicas) != 0 {
		t.Fatalf("API devices: %+v", list)
	}
	sameJSON(t, "device ls", p.ok("device", "ls", "--json"), list)
	sameJSON(t, "replica ls", p.ok("replica", "ls", "--json"), list)

	// The API declares a replica; the command line withdraws it.
	rep, err := pc.DeclareDevice(ctx, "Pat", api.DeclareRequest{PeerID: laptop, Replica: true, Name: "backup"})
	if err != nil || !rep.Replica {
		t.Fatalf("declare replica: %+v, %v", rep, err)
	}
	var rm api.NodeSet
	p.json(&rm, "replica", "rm", laptop, "--json")
	if !rm.Removed || !rm.Replica {
		t.Fatalf("replica rm --json: %+v", rm)
	}
	entries, err := pc.Log(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "log", p.ok("log", "--json"), entries)
	sameJSON(t, "log Pat", p.ok("log", "Pat", "--json"), entries)
}
