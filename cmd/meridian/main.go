// Command meridian is Meridian's one binary: the region gateway (agent), and
// client subcommands that talk to a gateway over HTTP.
//
//	meridian agent --region us-east --http 127.0.0.1:8700 [--redis redis://127.0.0.1:6379/0]
//	meridian register web web-1 --address 10.0.0.5 --port 8080 --ttl 30s
//	meridian heartbeat web web-1
//	meridian services
//	meridian instances web --passing
//	meridian deregister web web-1
//	meridian keyring generate
//	meridian sim run region-cutoff --seed 1 --report report.html
//	meridian version
package main

import (
	"fmt"
	"os"
)

const usage = `meridian: multi-region service-discovery federation gateway

Usage:
  meridian agent       run a region gateway
  meridian dev         run three federated regions in one process (us-east, eu-west, ap-south)
  meridian regions     list the federation's regions; 'regions forget R' drops R's replica everywhere
  meridian register    register an instance          (SERVICE ID --address A --port P [--ttl 30s | --http-check URL | --tcp-check H:P])
  meridian deregister  deregister an instance        (SERVICE ID)
  meridian heartbeat   renew an instance's TTL check (SERVICE ID [--status passing|warning|critical])
  meridian services    list the region's services
  meridian instances   list a service's instances    (SERVICE [--passing] [--tag T] [--zone Z])
  meridian acl         manage ACL tokens            (acl token create --description D --rule service_prefix:web:write, acl token list|read ID|delete ID|generate)
  meridian tls         make a CA and certificates    (tls ca create, tls cert create --region R [--client])
  meridian keyring     gossip encryption keys       (generate | list | install KEY | use KEY | remove KEY)
  meridian sim         simulate scenarios deterministically (sim run FILE|NAME --seed N, sim list, sim fuzz --seeds N)
  meridian version     print the version, commit and build date (also meridian --version)
  meridian completion  print a shell completion script (completion bash | completion zsh)

Client subcommands talk to --addr (default http://127.0.0.1:8700; env MERIDIAN_ADDR);
an https:// gateway takes --ca-file, --client-cert, --client-key (env MERIDIAN_CACERT,
MERIDIAN_CLIENT_CERT, MERIDIAN_CLIENT_KEY); all send --token (env MERIDIAN_TOKEN)
when the gateway has ACLs on.
Run 'meridian COMMAND -h' for a command's flags.
`

func main() {
	if len(os.Args) < 2 { // a usage error: help to stderr, exit 2
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"agent":      cmdAgent,
		"dev":        cmdDev,
		"regions":    withEnv(cmdRegions),
		"register":   withEnv(cmdRegister),
		"deregister": withEnv(cmdDeregister),
		"heartbeat":  withEnv(cmdHeartbeat),
		"services":   withEnv(cmdServices),
		"instances":  withEnv(cmdInstances),
		"keyring":    withEnv(cmdKeyring),
		"acl":        withEnv(cmdACL),
		"sim":        cmdSim,
		"tls":        cmdTLS,
		"version":    cmdVersion,    // version.go
		"completion": cmdCompletion, // completion.go
	}
	name := os.Args[1]
	if name == "-h" || name == "--help" || name == "-help" || name == "help" {
		fmt.Print(usage)
		return
	}
	if name == "--version" || name == "-version" || name == "-v" {
		name = "version"
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "meridian: unknown command %q\n\n%s", name, usage)
		os.Exit(2)
	}
	if err := cmd(os.Args[2:]); err != nil {
		code := exitStatus(err) // cli.go: help 0, usage errors 2, failures 1
		if code != 0 && !printed(err) {
			fmt.Fprintf(os.Stderr, "meridian %s: %v\n", name, err)
		}
		os.Exit(code)
	}
}

// withEnv lets client subcommands take --addr from MERIDIAN_ADDR and the
// TLS flags from MERIDIAN_CACERT, MERIDIAN_CLIENT_CERT, MERIDIAN_CLIENT_KEY
// (the command line, which comes after, wins).
func withEnv(f func([]string) error) func([]string) error {
	return func(args []string) error {
		if v := os.Getenv("MERIDIAN_ADDR"); v != "" {
			args = append([]string{"--addr", v}, args...)
		}
		for _, e := range clientTLSEnv {
			if v := os.Getenv(e.env); v != "" {
				args = append([]string{"--" + e.flag, v}, args...)
			}
		}
		return f(args)
	}
}
