package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/meridian-sd/meridian/acl"
	"github.com/meridian-sd/meridian/gateway"
)

const aclUsage = `usage:
  meridian acl token generate     (a new random secret, e.g. for --acl-initial-token)
  meridian acl token create [--description D] --rule RULE [--rule RULE ...]
  meridian acl token list
  meridian acl token read ID
  meridian acl token delete ID
  meridian acl token self
RULE is service:NAME:ACCESS, service_prefix:PREFIX:ACCESS (ACCESS read, write or deny),
operator:read|write or acl:write.`

// cmdACL is `meridian acl token ...`.
func cmdACL(args []string) error {
	// The flag package stops at the first positional argument, and withEnv
	// may have put --addr in front: find "token" and the verb.
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !isBoolFlag(a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	if len(pos) < 2 || pos[0] != "token" {
		if len(pos) == 0 && len(flags) > 0 && wantsHelp(flags) {
			fmt.Println(aclUsage)
			return nil
		}
		return fmt.Errorf("%s", aclUsage)
	}
	verb, rest := pos[1], pos[2:]
	if verb == "generate" {
		// A secret for --acl-initial-token; no gateway involved.
		if len(rest) > 0 {
			return fmt.Errorf("usage: meridian acl token generate")
		}
		s, err := gateway.NewACLSecret()
		if err != nil {
			return err
		}
		fmt.Println(s)
		return nil
	}
	fs := flag.NewFlagSet("acl token "+verb, flag.ContinueOnError)
	addr, asJSON := clientFlags(fs)
	desc := fs.String("description", "", "what the token is for (create)")
	var rules listFlag
	fs.Var(&rules, "rule", "a rule, repeatable (create): service:NAME:ACCESS, service_prefix:PREFIX:ACCESS, operator:ACCESS, acl:write")
	if err := parseFlags(fs, flags, fs.Parse); err != nil { // cli.go: help to stdout, --flag style
		return err
	}
	c := newAPIClient(*addr)
	show := func(raw []byte, err error, human func()) error {
		if err != nil {
			return err
		}
		if *asJSON {
			os.Stdout.Write(raw)
			return nil
		}
		human()
		return nil
	}
	switch {
	case verb == "create" && len(rest) == 0:
		req := acl.TokenRequest{Description: *desc, Rules: []acl.Rule{}}
		for _, r := range rules {
			rule, err := acl.ParseRule(r)
			if err != nil {
				return err
			}
			req.Rules = append(req.Rules, rule)
		}
		var out struct {
			ID, Secret, Description string
			Rules                   []acl.Rule
			CreateIndex             uint64 `json:"create_index"`
		}
		raw, err := c.do(http.MethodPut, "/v1/acl/tokens", req, &out)
		return show(raw, err, func() {
			fmt.Printf("AccessorID:   %s\nSecretID:     %s\nDescription:  %s\nRules:        %s\nCreateIndex:  %d\n",
				out.ID, out.Secret, out.Description, rulesString(out.Rules), out.CreateIndex)
			fmt.Println("(the secret is shown only now: store it safely)")
		})
	case verb == "list" && len(rest) == 0:
		var out []acl.View
		raw, err := c.do(http.MethodGet, "/v1/acl/tokens", nil, &out)
		return show(raw, err, func() {
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCESSOR ID\tDESCRIPTION\tRULES\tCREATE INDEX")
			for _, v := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", v.ID, v.Description, viewRules(v), v.CreateIndex)
			}
			tw.Flush()
		})
	case verb == "read" && len(rest) == 1, verb == "self" && len(rest) == 0:
		path := "/v1/acl/token/self"
		if verb == "read" {
			path = "/v1/acl/tokens/" + url.PathEscape(rest[0])
		}
		var v acl.View
		raw, err := c.do(http.MethodGet, path, nil, &v)
		return show(raw, err, func() {
			fmt.Printf("AccessorID:   %s\nDescription:  %s\nRules:        %s\nCreateIndex:  %d\n", v.ID, v.Description, viewRules(v), v.CreateIndex)
		})
	case verb == "delete" && len(rest) == 1:
		raw, err := c.do(http.MethodDelete, "/v1/acl/tokens/"+url.PathEscape(rest[0]), nil, nil)
		return show(raw, err, func() { fmt.Printf("token %s deleted\n", rest[0]) })
	}
	return fmt.Errorf("%s", aclUsage)
}

func isBoolFlag(a string) bool {
	n := strings.TrimLeft(a, "-")
	return n == "json" || n == "h" || n == "help"
}

func rulesString(rs []acl.Rule) string {
	if len(rs) == 0 {
		return "(none)"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, " ")
}

func viewRules(v acl.View) string {
	if v.Management {
		return "(management: everything)"
	}
	return rulesString(v.Rules)
}
