package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultsCreatedOnFirstRun(t *testing.T) {
	dir := t.TempDir()
	c, created, err := LoadOrCreate(dir)
	if err != nil || !created {
		t.Fatalf("first run: created=%v err=%v", created, err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("first run config %+v, want defaults", c)
	}
	want := &Config{
		Version: 1,
		Listen: []string{
			"/ip4/0.0.0.0/tcp/4101",
			"/ip4/0.0.0.0/udp/4101/quic-v1",
			"/ip6/::/tcp/4101",
			"/ip6/::/udp/4101/quic-v1",
		},
		API:       "127.0.0.1:4102",
		Bootstrap: []string{},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
	st, err := os.Stat(Path(dir))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", st, err)
	}
	data, _ := os.ReadFile(Path(dir))
	for _, field := range []string{`"version": 1`, `"bootstrap": []`, `"mdns": false`, `"private_dht": false`, `"relay_service": false`, `"nat_port_map": false`} {
		if !strings.Contains(string(data), field) {
			t.Errorf("file lacks %s:\n%s", field, data)
		}
	}
	again, created, err := LoadOrCreate(dir)
	if err != nil || created || !reflect.DeepEqual(again, c) {
		t.Fatalf("second run: %+v created=%v err=%v", again, created, err)
	}
}

func TestRoundTrip(t *testing.T) {
	c := Default()
	c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	c.API = "[::1]:9000"
	c.Bootstrap = []string{"/ip4/192.0.2.7/tcp/4101/p2p/12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu"}
	c.MDNS, c.PrivateDHT, c.RelayService, c.NATPortMap = true, true, true, true
	path := filepath.Join(t.TempDir(), FileName)
	if err := Save(path, c); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip: %+v, want %+v", got, c)
	}
	peers, err := got.BootstrapPeers()
	if err != nil || len(peers) != 1 || len(peers[0].Addrs) != 1 {
		t.Fatalf("bootstrap peers %v, %v", peers, err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("temp files left beside the config: %v", ents)
	}
}

func TestEnvOverrides(t *testing.T) {
	env := map[string]string{
		EnvListen:     " /ip4/127.0.0.1/tcp/0, /ip4/127.0.0.1/udp/0/quic-v1 ,",
		EnvAPI:        "127.0.0.1:0",
		EnvMDNS:       "true",
		EnvPrivateDHT: "1",
		EnvBootstrap:  "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGRUVh4QVVbwHLwiHGK9yJthLt8jC3CjxVqrcF8BrjDyz,",
	}
	c := Default()
	if err := c.ApplyEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}; !reflect.DeepEqual(c.Listen, want) {
		t.Fatalf("listen %v, want %v", c.Listen, want)
	}
	if c.API != "127.0.0.1:0" || !c.MDNS || !c.PrivateDHT {
		t.Fatalf("api %q mdns %v private dht %v", c.API, c.MDNS, c.PrivateDHT)
	}
	if want := []string{"/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGRUVh4QVVbwHLwiHGK9yJthLt8jC3CjxVqrcF8BrjDyz"}; !reflect.DeepEqual(c.Bootstrap, want) {
		t.Fatalf("bootstrap %v, want %v", c.Bootstrap, want)
	}

	// Unset or empty variables leave the file's values.
	c = Default()
	if err := c.ApplyEnv(func(string) string { return "" }); err != nil || !reflect.DeepEqual(c, Default()) {
		t.Fatalf("no overrides changed the config: %+v %v", c, err)
	}

	for name, tc := range map[string]struct{ key, val, want string }{
		"bad bool":               {EnvMDNS, "yes please", "BLOCKMRS_MDNS"},
		"bad dht bool":           {EnvPrivateDHT, "maybe", "BLOCKMRS_PRIVATE_DHT"},
		"public api":             {EnvAPI, "0.0.0.0:4102", "not a loopback address"},
		"bad multiadr":           {EnvListen, "/ip4/nope/tcp/1", `field "listen"`},
		"bootstrap without peer": {EnvBootstrap, "/ip4/127.0.0.1/tcp/4001", "bootstrap"},
	} {
		c := Default()
		err := c.ApplyEnv(func(k string) string {
			if k == tc.key {
				return tc.val
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line mentioning %q", name, err, tc.want)
		}
	}
}

func TestBadFiles(t *testing.T) {
	valid := func(edit func(s string) string) string {
		data, _ := Default().Marshal()
		return edit(string(data))
	}
	for name, tc := range map[string]struct{ file, want string }{
		"unknown field":   {valid(func(s string) string { return strings.Replace(s, `"mdns"`, `"mdsn"`, 1) }), `unknown field "mdsn"`},
		"unknown version": {valid(func(s string) string { return strings.Replace(s, `"version": 1`, `"version": 2`, 1) }), "version 2 is not supported"},
		"no version":      {`{"listen": ["/ip4/127.0.0.1/tcp/0"], "api": "127.0.0.1:1"}`, `no "version" field`},
		"wrong type":      {valid(func(s string) string { return strings.Replace(s, `"mdns": false`, `"mdns": "no"`, 1) }), `field "mdns"`},
		"not json":        {"version = 1\n", "invalid character"},
		"trailing data":   {valid(func(s string) string { return s + "{}" }), "trailing data"},
		"truncated":       {valid(func(s string) string { return s[:len(s)/2] }), "unexpected end"},
		"public api":      {valid(func(s string) string { return strings.Replace(s, "127.0.0.1:4102", "192.0.2.1:4102", 1) }), `field "api"`},
		"api no port":     {valid(func(s string) string { return strings.Replace(s, "127.0.0.1:4102", "127.0.0.1", 1) }), `field "api"`},
		"bad listen":      {valid(func(s string) string { return strings.Replace(s, "/ip4/0.0.0.0/tcp/4101", "/ip4/0.0.0.0/tcp/nope", 1) }), `field "listen"`},
		"no listen":       {`{"version": 1, "listen": [], "api": "127.0.0.1:1"}`, "no listen address"},
		"bootstrap no id": {valid(func(s string) string {
			return strings.Replace(s, `"bootstrap": []`, `"bootstrap": ["/ip4/192.0.2.1/tcp/4101"]`, 1)
		}), `field "bootstrap"`},
	} {
		path := filepath.Join(t.TempDir(), FileName)
		if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil {
			t.Errorf("%s: loaded", name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, path) || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q, want one line naming the file and %q", name, msg, tc.want)
		}
	}
}

func TestCheckAPIAddr(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:4102", "127.0.0.2:1", "[::1]:4102", "localhost:4102", "127.0.0.1:0"} {
		if err := CheckAPIAddr(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{":4102", "0.0.0.0:4102", "[::]:4102", "192.168.1.2:4102", "example.com:4102", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000"} {
		if err := CheckAPIAddr(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	data, _ := Default().Marshal()
	f.Add(data)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		out, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(out)
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("re-parse: %+v %v", again, err)
		}
	})
}
