package main

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/meridian-sd/meridian/gateway"

	"github.com/meridian-sd/meridian/federation/serfmember"
)

const keyringUsage = `Usage:
  meridian keyring generate        print a new random gossip key (32 bytes, base64; no gateway needed)
  meridian keyring list            list the keys installed across the gossip pool
  meridian keyring install KEY     install KEY on every gateway (it decrypts; the primary still encrypts)
  meridian keyring use KEY         make KEY the primary key on every gateway
  meridian keyring remove KEY      remove KEY from every gateway (not the primary)

Rotation: install NEW, use NEW, remove OLD. Gateways started with
--keyring-file keep the change across restarts.
`

// cmdKeyring manages the gossip encryption keyring over
// /v1/operator/keyring (operator write; list needs operator read).
func cmdKeyring(args []string) error {
	fs := flag.NewFlagSet("keyring", flag.ContinueOnError)
	addr, asJSON := clientFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), keyringUsage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("missing subcommand: generate, list, install, use or remove")
	}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	switch sub {
	case "generate":
		if len(rest) != 0 {
			return fmt.Errorf("usage: meridian keyring generate")
		}
		k, err := generateKey(rand.Reader)
		if err != nil {
			return err
		}
		fmt.Println(k)
		return nil
	case "list":
		if len(rest) != 0 {
			return fmt.Errorf("usage: meridian keyring list")
		}
		var pools []gateway.KeyringResponse
		raw, err := newAPIClient(*addr).do(http.MethodGet, "/v1/operator/keyring", nil, &pools)
		if err != nil {
			return err
		}
		if *asJSON {
			os.Stdout.Write(raw)
			return nil
		}
		return printKeyring(os.Stdout, pools)
	case "install", "use", "remove":
		if len(rest) != 1 {
			return fmt.Errorf("usage: meridian keyring %s KEY", sub)
		}
		if _, err := serfmember.ParseKey(rest[0]); err != nil {
			return fmt.Errorf("KEY: %w", err)
		}
		method := map[string]string{"install": http.MethodPost, "use": http.MethodPut, "remove": http.MethodDelete}[sub]
		var pools []gateway.KeyringResponse
		raw, err := newAPIClient(*addr).do(method, "/v1/operator/keyring", gateway.KeyringRequest{Key: strings.TrimSpace(rest[0])}, &pools)
		if err != nil {
			return err
		}
		if *asJSON {
			os.Stdout.Write(raw)
			return nil
		}
		n, of := 0, 0
		for _, p := range pools {
			n, of = n+p.NumResp, of+p.NumNodes
		}
		done := map[string]string{"install": "installed the key", "use": "the key is now primary", "remove": "removed the key"}[sub]
		fmt.Printf("%s on %d of %d gateways\n", done, n, of)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q: want generate, list, install, use or remove", sub)
}

// generateKey returns a new 32-byte (AES-256) gossip key in base64.
func generateKey(r io.Reader) (string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// printKeyring prints each pool's keys, the primary first.
func printKeyring(w io.Writer, pools []gateway.KeyringResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range pools {
		fmt.Fprintf(tw, "gossip pool: %d gateways, %d answered\n", p.NumNodes, p.NumResp)
		keys := make([]string, 0, len(p.Keys))
		for k := range p.Keys {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if c := p.PrimaryKeys[b] - p.PrimaryKeys[a]; c != 0 {
				return c
			}
			return strings.Compare(a, b)
		})
		fmt.Fprintln(tw, "KEY\tINSTALLED\tPRIMARY")
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%d/%d\t%d/%d\n", k, p.Keys[k], p.NumNodes, p.PrimaryKeys[k], p.NumNodes)
		}
		names := make([]string, 0, len(p.Messages))
		for n := range p.Messages {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintf(tw, "  %s: %s\n", n, p.Messages[n])
		}
	}
	return tw.Flush()
}
