// Package config is the node's configuration: a versioned JSON file,
// config.json in the repo folder, created with defaults on first run, read
// strictly, and overridden field by field by BLOCKMRS_* environment
// variables.
//
// The file looks like this (the defaults):
//
//	{
//	  "version": 1,
//	  "listen": [
//	    "/ip4/0.0.0.0/tcp/4101",
//	    "/ip4/0.0.0.0/udp/4101/quic-v1",
//	    "/ip6/::/tcp/4101",
//	    "/ip6/::/udp/4101/quic-v1"
//	  ],
//	  "api": "127.0.0.1:4102",
//	  "bootstrap": [],
//	  "mdns": false,
//	  "private_dht": false,
//	  "relay_service": false,
//	  "nat_port_map": false
//	}
//
// Strict means: an unknown field, a missing or unknown version, trailing
// data or a value that does not parse is an error naming the file and the
// field, and the node does not start. A file from a newer release is
// refused rather than half understood.
//
// Environment overrides apply on top of the file, in memory only; they are
// never written back. See ApplyEnv.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/blockmrs/blockmrs/node/internal/fsutil"
	"github.com/blockmrs/blockmrs/protocol"
)

// FileName is the config file's name in the repo folder.
const FileName = "config.json"

// Version is the config format this package reads and writes.
const Version = 1

// Default ports: libp2p (TCP and UDP/QUIC share the number) and the local
// HTTP API.
const (
	DefaultP2PPort = 4101
	DefaultAPIPort = 4102
)

// Environment variables that override the file.
const (
	// EnvListen replaces Listen: comma-separated multiaddrs.
	EnvListen = "BLOCKMRS_LISTEN"
	// EnvAPI replaces API: a loopback host:port.
	EnvAPI = "BLOCKMRS_API"
	// EnvMDNS replaces MDNS: true or false (as strconv.ParseBool reads it).
	EnvMDNS = "BLOCKMRS_MDNS"
	// EnvBootstrap replaces Bootstrap: comma-separated multiaddrs ending
	// in /p2p/PEER_ID.
	EnvBootstrap = "BLOCKMRS_BOOTSTRAP"
	// EnvPrivateDHT replaces PrivateDHT: true or false.
	EnvPrivateDHT = "BLOCKMRS_PRIVATE_DHT"
)

// maxFileSize bounds the config file; a real one is well under 4 KiB.
const maxFileSize = 1 << 20

// Config is the node's configuration. The zero value is not valid; start
// from Default or Load.
type Config struct {
	// Version is the format version; Load refuses any but Version.
	Version int `json:"version"`
	// Listen lists the libp2p listen multiaddrs. The defaults listen on
	// every interface, IPv4 and IPv6, TCP and QUIC v1 on port 4101, so a
	// peer on the LAN or behind a forwarded port can dial in; a fixed
	// port (not 0) keeps the node's addresses stable across restarts,
	// which contacts who stored them rely on. An address family the
	// machine lacks (no IPv6) is skipped by libp2p as long as one address
	// binds.
	Listen []string `json:"listen"`
	// API is the local HTTP API's host:port. It must be a loopback
	// address; the API refuses anything else.
	API string `json:"api"`
	// Bootstrap lists peers dialled at start, as multiaddrs ending in
	// /p2p/<peer ID> (a clinic node, the patient's other device).
	Bootstrap []string `json:"bootstrap"`
	// MDNS announces and discovers nodes on the local network by mDNS.
	// Off by default: the announcement tells the LAN a BlockMRS node runs
	// here (its peer ID, never an account).
	MDNS bool `json:"mdns"`
	// PrivateDHT joins the private Kademlia DHT (protocol prefix
	// /blockmrs, server mode, seeded from Bootstrap) to find the addresses
	// of peers beyond the bootstrap list by peer ID. It routes peers only:
	// no record or chain CID is ever announced on it.
	PrivateDHT bool `json:"private_dht"`
	// RelayService runs a circuit-relay v2 relay for others (a clinic's
	// long-lived, reachable node). Every node is a relay client.
	RelayService bool `json:"relay_service"`
	// NATPortMap asks the router for a port mapping by UPnP or NAT-PMP.
	// Off by default: it opens a port on the user's router without asking.
	NATPortMap bool `json:"nat_port_map"`
	// Trust lists account IDs of authorities whose attestations make a
	// role verified on this node, besides the shipped ones and those
	// added with 'blockmrs trust add' (see keyshare's trust.go). Absent
	// from the default file.
	Trust []string `json:"trust,omitempty"`
}

// Default returns the configuration written on first run.
func Default() *Config {
	p := strconv.Itoa(DefaultP2PPort)
	return &Config{
		Version: Version,
		Listen: []string{
			"/ip4/0.0.0.0/tcp/" + p,
			"/ip4/0.0.0.0/udp/" + p + "/quic-v1",
			"/ip6/::/tcp/" + p,
			"/ip6/::/udp/" + p + "/quic-v1",
		},
		API:       net.JoinHostPort("127.0.0.1", strconv.Itoa(DefaultAPIPort)),
		Bootstrap: []string{},
	}
}

// Path returns the config file's path in repo folder dir.
func Path(dir string) string { return filepath.Join(dir, FileName) }

// Load reads and validates the config file at path. It does not apply
// environment overrides.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes and validates a config file's bytes strictly: unknown
// fields, a missing or unknown version and trailing data are errors.
func Parse(data []byte) (*Config, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	// The version decides how the rest is read, so it is checked first,
	// leniently, and an unknown version is reported as such rather than
	// as whatever field it added.
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&v); err != nil {
		return nil, oneLine(err)
	}
	switch {
	case v.Version == nil:
		return nil, errors.New(`no "version" field`)
	case *v.Version != Version:
		return nil, fmt.Errorf("version %d is not supported (this release reads version %d)", *v.Version, Version)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	c := new(Config)
	if err := dec.Decode(c); err != nil {
		return nil, oneLine(err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON object")
	}
	if c.Bootstrap == nil {
		c.Bootstrap = []string{}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// oneLine turns encoding/json's messages into one line naming the field.
func oneLine(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("field %q: want %s, got %s", te.Field, te.Type, te.Value)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("unexpected end of file (truncated JSON?)")
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	return errors.New(strings.ReplaceAll(msg, "\n", " "))
}

// Validate checks every field: multiaddrs parse, bootstrap peers carry a
// peer ID, the API address is a loopback host:port.
func (c *Config) Validate() error {
	if c.Version != Version {
		return fmt.Errorf("version %d is not supported (this release reads version %d)", c.Version, Version)
	}
	if len(c.Listen) == 0 {
		return errors.New(`field "listen": no listen address`)
	}
	if _, err := c.ListenAddrs(); err != nil {
		return err
	}
	if _, err := c.BootstrapPeers(); err != nil {
		return err
	}
	if err := CheckAPIAddr(c.API); err != nil {
		return fmt.Errorf(`field "api": %w`, err)
	}
	if _, err := c.TrustedAuthorities(); err != nil {
		return err
	}
	return nil
}

// MaxTrust bounds the "trust" list.
const MaxTrust = 256

// TrustedAuthorities parses Trust.
func (c *Config) TrustedAuthorities() ([]protocol.AccountID, error) {
	if len(c.Trust) > MaxTrust {
		return nil, fmt.Errorf(`field "trust": %d accounts, at most %d`, len(c.Trust), MaxTrust)
	}
	out := make([]protocol.AccountID, 0, len(c.Trust))
	for _, s := range c.Trust {
		if _, err := protocol.ParseAccountID(s); err != nil {
			return nil, fmt.Errorf(`field "trust": %q: %w`, s, err)
		}
		out = append(out, protocol.AccountID(s))
	}
	return out, nil
}

// ListenAddrs parses Listen.
func (c *Config) ListenAddrs() ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(c.Listen))
	for _, s := range c.Listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf(`field "listen": %q: %w`, s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// BootstrapPeers parses Bootstrap, merging addresses of the same peer.
func (c *Config) BootstrapPeers() ([]peer.AddrInfo, error) {
	addrs := make([]ma.Multiaddr, 0, len(c.Bootstrap))
	for _, s := range c.Bootstrap {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf(`field "bootstrap": %q: %w`, s, err)
		}
		if _, err := peer.AddrInfoFromP2pAddr(a); err != nil {
			return nil, fmt.Errorf(`field "bootstrap": %q: want a multiaddr ending in /p2p/<peer ID>: %w`, s, err)
		}
		addrs = append(addrs, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil {
		return nil, fmt.Errorf(`field "bootstrap": %w`, err)
	}
	return infos, nil
}

// CheckAPIAddr reports whether addr is a host:port the API may listen on:
// a loopback IP literal (127.0.0.0/8, ::1) or "localhost", and a port.
// Port 0 (any free port) is allowed.
func CheckAPIAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || (port != "0" && n == 0) {
		return fmt.Errorf("%q: bad port %q", addr, port)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address (the API serves this machine only; use 127.0.0.1:PORT)", addr)
	}
	return nil
}

// ApplyEnv applies the BLOCKMRS_* overrides read through getenv (os.Getenv
// when nil) to c and validates the result. An unset or empty variable
// leaves its field alone.
func (c *Config) ApplyEnv(getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := strings.TrimSpace(getenv(EnvListen)); v != "" {
		c.Listen = splitList(v)
	}
	if v := strings.TrimSpace(getenv(EnvBootstrap)); v != "" {
		c.Bootstrap = splitList(v)
	}
	if v := strings.TrimSpace(getenv(EnvAPI)); v != "" {
		c.API = v
	}
	if v := strings.TrimSpace(getenv(EnvMDNS)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("$%s: %q is not true or false", EnvMDNS, v)
		}
		c.MDNS = b
	}
	if v := strings.TrimSpace(getenv(EnvPrivateDHT)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("$%s: %q is not true or false", EnvPrivateDHT, v)
		}
		c.PrivateDHT = b
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("config with $%s, $%s, $%s, $%s, $%s applied: %w", EnvListen, EnvAPI, EnvMDNS, EnvBootstrap, EnvPrivateDHT, err)
	}
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Marshal encodes c as the file stores it: indented, with a final newline.
func (c *Config) Marshal() ([]byte, error) {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return append(data, '\n'), nil
}

// Save validates c and writes it to path atomically (temp file, fsync,
// rename), mode 0600.
func Save(path string, c *Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	data, err := c.Marshal()
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// LoadOrCreate loads config.json from repo folder dir, writing Default
// there first when it does not exist; created tells which happened.
// Environment overrides are not applied. The caller must hold the repo
// lock.
func LoadOrCreate(dir string) (c *Config, created bool, err error) {
	path := Path(dir)
	c, err = Load(path)
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	c = Default()
	if err := Save(path, c); err != nil {
		return nil, false, err
	}
	return c, true, nil
}
