package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// listFlag collects a repeatable flag (--tag a --tag b, or --tag a,b).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// apiClient talks to one gateway for the client subcommands.
type apiClient struct {
	addr  string
	http  *http.Client
	err   error  // a bad --ca-file, --client-cert or --client-key
	token string // ACL secret sent as X-Meridian-Token; "" sends none
}

// clientToken is the --token of the client subcommand being run (every
// clientFlags call resets it); MERIDIAN_TOKEN when empty. Its default
// stays "" so that -h never prints a secret.
var clientToken string

func clientFlags(fs *flag.FlagSet) (*string, *bool) {
	addr := fs.String("addr", "http://127.0.0.1:8700", "gateway HTTP address")
	asJSON := fs.Bool("json", false, "print the gateway's JSON answer as it is")
	addClientTLSFlags(fs)
	fs.StringVar(&clientToken, "token", "", "ACL token secret sent with every request (env MERIDIAN_TOKEN)")
	return addr, asJSON
}

func newAPIClient(addr string) *apiClient {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	tok := clientToken
	if tok == "" {
		tok = os.Getenv("MERIDIAN_TOKEN")
	}
	t, err := clientTransport()
	return &apiClient{addr: strings.TrimRight(addr, "/"), http: &http.Client{Transport: t, Timeout: 15 * time.Second}, err: err, token: tok}
}

// do sends a request and decodes a 2xx JSON answer into out (when not nil);
// it returns the raw body too. Non-2xx answers become errors with the
// gateway's message and field.
func (c *apiClient) do(method, path string, body any, out any) ([]byte, error) {
	if c.err != nil {
		return nil, c.err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.addr+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("X-Meridian-Token", c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("gateway %s unreachable: %w", c.addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error, Field string }
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			if e.Field != "" {
				return raw, fmt.Errorf("%s (field %s, HTTP %d)", e.Error, e.Field, resp.StatusCode)
			}
			return raw, fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
		}
		return raw, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return raw, fmt.Errorf("decoding the gateway's answer: %w", err)
		}
	}
	return raw, nil
}

func instancePath(service, id string) string {
	return "/v1/services/" + url.PathEscape(service) + "/instances/" + url.PathEscape(id)
}

// serviceAndID takes SERVICE ID from positional args or --service/--id.
func serviceAndID(fs *flag.FlagSet, service, id string) (string, string, error) {
	args := fs.Args()
	if service == "" && len(args) > 0 {
		service, args = args[0], args[1:]
	}
	if id == "" && len(args) > 0 {
		id = args[0]
	}
	if service == "" || id == "" {
		return "", "", fmt.Errorf("need a service and an instance id: SERVICE ID, or --service and --id")
	}
	return service, id, nil
}

func cmdRegister(args []string) error {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	addr, asJSON := clientFlags(fs)
	service := fs.String("service", "", "service name")
	id := fs.String("id", "", "instance id")
	address := fs.String("address", "", "instance address, IP or hostname (required unless --address-from-interface)")
	iface := fs.String("address-from-interface", "", "use the first IPv4 address of this network interface (e.g. lo, eth0) as --address")
	port := fs.Int("port", 0, "instance port")
	zone := fs.String("zone", "", "zone")
	weight := fs.Int("weight", -1, "weight 1-1000 (default 100); 0 drains the instance: listed, never picked or proxied to")
	status := fs.String("status", "", "initial status: passing, warning or critical")
	var tags, meta listFlag
	fs.Var(&tags, "tag", "tag (repeatable)")
	fs.Var(&meta, "meta", "key=value metadata (repeatable)")
	ttl := fs.String("ttl", "", "TTL check: heartbeats must arrive within this duration")
	httpCheck := fs.String("http-check", "", "HTTP check URL")
	tcpCheck := fs.String("tcp-check", "", "TCP check host:port")
	interval := fs.String("interval", "", "check interval (HTTP and TCP)")
	timeout := fs.String("timeout", "", "check timeout (HTTP and TCP)")
	sbp := fs.Int("success-before-passing", 0, "consecutive passes before passing")
	fbc := fs.Int("failures-before-critical", 0, "consecutive failures before critical")
	dca := fs.String("deregister-critical-after", "", "remove the instance after it stays critical this long")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	svc, iid, err := serviceAndID(fs, *service, *id)
	if err != nil {
		return err
	}
	switch {
	case *address != "" && *iface != "":
		return fmt.Errorf("give --address or --address-from-interface, not both")
	case *iface != "":
		a, err := interfaceAddr(*iface)
		if err != nil {
			return err
		}
		*address = a
	case *address == "":
		return fmt.Errorf("--address is required (the address other services reach this instance at), or --address-from-interface NAME")
	}
	body := map[string]any{"address": *address, "port": *port}
	if *zone != "" {
		body["zone"] = *zone
	}
	if len(tags) > 0 {
		body["tags"] = []string(tags)
	}
	if len(meta) > 0 {
		m := map[string]string{}
		for _, kv := range meta {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("--meta %q: want key=value", kv)
			}
			m[k] = v
		}
		body["meta"] = m
	}
	if *weight >= 0 {
		body["weight"] = *weight
	}
	if *status != "" {
		body["status"] = *status
	}
	check := map[string]any{}
	for k, v := range map[string]string{"ttl": *ttl, "http": *httpCheck, "tcp": *tcpCheck, "interval": *interval,
		"timeout": *timeout, "deregister_critical_after": *dca} {
		if v != "" {
			check[k] = v
		}
	}
	if *sbp != 0 {
		check["success_before_passing"] = *sbp
	}
	if *fbc != 0 {
		check["failures_before_critical"] = *fbc
	}
	if len(check) > 0 {
		body["check"] = check
	}
	var in map[string]any
	raw, err := newAPIClient(*addr).do(http.MethodPut, instancePath(svc, iid), body, &in)
	if err != nil {
		return err
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return nil
	}
	fmt.Fprintf(termOut, "registered %s/%s at %v:%v (status %v, version %v)\n", svc, iid, in["address"], in["port"], in["status"], in["modify_index"])
	return nil
}

func cmdDeregister(args []string) error {
	fs := flag.NewFlagSet("deregister", flag.ContinueOnError)
	addr, asJSON := clientFlags(fs)
	service := fs.String("service", "", "service name")
	id := fs.String("id", "", "instance id")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	svc, iid, err := serviceAndID(fs, *service, *id)
	if err != nil {
		return err
	}
	raw, err := newAPIClient(*addr).do(http.MethodDelete, instancePath(svc, iid), nil, nil)
	if err != nil {
		return err
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return nil
	}
	fmt.Fprintf(termOut, "deregistered %s/%s\n", svc, iid)
	return nil
}

func cmdHeartbeat(args []string) error {
	fs := flag.NewFlagSet("heartbeat", flag.ContinueOnError)
	addr, asJSON := clientFlags(fs)
	service := fs.String("service", "", "service name")
	id := fs.String("id", "", "instance id")
	status := fs.String("status", "passing", "status to report: passing, warning or critical")
	output := fs.String("output", "", "free-text output to record")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	svc, iid, err := serviceAndID(fs, *service, *id)
	if err != nil {
		return err
	}
	var in map[string]any
	raw, err := newAPIClient(*addr).do(http.MethodPut, instancePath(svc, iid)+"/heartbeat",
		map[string]string{"status": *status, "output": *output}, &in)
	if err != nil {
		return err
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return nil
	}
	fmt.Fprintf(termOut, "heartbeat %s/%s: %v\n", svc, iid, in["status"])
	return nil
}

func cmdServices(args []string) error {
	fs := flag.NewFlagSet("services", flag.ContinueOnError)
	addr, asJSON := clientFlags(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	var resp struct {
		Region   string `json:"region"`
		Version  uint64 `json:"version"`
		Stale    bool   `json:"stale"`
		Services []struct {
			Name                                  string
			Instances, Passing, Warning, Critical int
			Regions                               map[string]struct{ Instances, Passing int }
		} `json:"services"`
	}
	raw, err := newAPIClient(*addr).do(http.MethodGet, "/v1/services", nil, &resp)
	if err != nil {
		return err
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return nil
	}
	fmt.Fprintf(termOut, "region %s, catalog version %d%s\n", resp.Region, resp.Version, staleNote(resp.Stale))
	tw := tabwriter.NewWriter(termOut, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tINSTANCES\tPASSING\tWARNING\tCRITICAL\tALL REGIONS (passing/instances)")
	for _, s := range resp.Services {
		names := make([]string, 0, len(s.Regions))
		for n := range s.Regions {
			names = append(names, n)
		}
		sort.Strings(names)
		var per []string
		for _, n := range names {
			per = append(per, fmt.Sprintf("%s %d/%d", n, s.Regions[n].Passing, s.Regions[n].Instances))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Instances, s.Passing, s.Warning, s.Critical, strings.Join(per, ", "))
	}
	return tw.Flush()
}

func cmdInstances(args []string) error {
	fs := flag.NewFlagSet("instances", flag.ContinueOnError)
	addr, asJSON := clientFlags(fs)
	passing := fs.Bool("passing", false, "only passing instances")
	zone := fs.String("zone", "", "only this zone")
	regionName := fs.String("region", "", "another region's instances, from this gateway's replica")
	var tags listFlag
	fs.Var(&tags, "tag", "only instances with this tag (repeatable)")
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: meridian instances SERVICE [--passing] [--tag T] [--zone Z] [--region R]")
	}
	q := url.Values{}
	if *regionName != "" {
		q.Set("region", *regionName)
	}
	if *passing {
		q.Set("passing", "true")
	}
	if *zone != "" {
		q.Set("zone", *zone)
	}
	for _, t := range tags {
		q.Add("tag", t)
	}
	var resp struct {
		Service   string `json:"service"`
		Region    string `json:"region"`
		Version   uint64 `json:"version"`
		Stale     bool   `json:"stale"`
		AgeMS     int64  `json:"age_ms"`
		Instances []struct {
			ID, Address, Zone, Status, Output string
			Port, Weight                      int
			Tags                              []string
		} `json:"instances"`
	}
	path := "/v1/services/" + url.PathEscape(fs.Arg(0))
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if *regionName == "*" {
		*asJSON = true // one answer per region: print it as it is
	}
	var out any = &resp
	if *asJSON {
		out = nil
	}
	raw, err := newAPIClient(*addr).do(http.MethodGet, path, nil, out)
	if err != nil {
		return err
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return nil
	}
	note := ""
	if resp.Stale {
		note = staleReason(newAPIClient(*addr), resp.Region, resp.AgeMS) // stale.go
	}
	fmt.Fprintf(termOut, "%s in region %s, catalog version %d%s\n", resp.Service, resp.Region, resp.Version, note)
	tw := tabwriter.NewWriter(termOut, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tZONE\tWEIGHT\tSTATUS\tTAGS\tOUTPUT")
	for _, in := range resp.Instances {
		fmt.Fprintf(tw, "%s\t%s:%d\t%s\t%d\t%s\t%s\t%s\n", in.ID, in.Address, in.Port, in.Zone, in.Weight,
			in.Status, strings.Join(in.Tags, ","), in.Output)
	}
	return tw.Flush()
}

func staleNote(stale bool) string {
	if stale {
		return " (STALE: the gateway cannot reach its store; answering from cache)"
	}
	return ""
}

// parseArgs parses flags that may come before, between or after positional
// arguments (meridian register web web-1 --port 80), and leaves the
// positional ones in fs.Args().
func parseArgs(fs *flag.FlagSet, args []string) error {
	return parseFlags(fs, args, func(args []string) error { return parseInterleaved(fs, args) }) // cli.go
}

func parseInterleaved(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			pos = append(pos, rest[1:]...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

func cmdRegions(args []string) error {
	fs := flag.NewFlagSet("regions", flag.ContinueOnError)
	addr, asJSON := clientFlags(fs)
	if err := parseArgs(fs, args); err != nil {
		return err
	}
	c := newAPIClient(*addr)
	if fs.NArg() > 0 {
		if fs.Arg(0) != "forget" || fs.NArg() != 2 {
			return fmt.Errorf("usage: meridian regions [forget REGION]")
		}
		raw, err := c.do(http.MethodDelete, "/v1/regions/"+url.PathEscape(fs.Arg(1)), nil, nil)
		if err != nil {
			return err
		}
		if *asJSON {
			os.Stdout.Write(raw)
			return nil
		}
		fmt.Fprintf(termOut, "region %s forgotten: every gateway drops its replica (it comes back if its gateways are still alive)\n", fs.Arg(1))
		return nil
	}
	var resp struct {
		Local   string         `json:"local"`
		Regions []regionStatus `json:"regions"` // stale.go
	}
	raw, err := c.do(http.MethodGet, "/v1/regions", nil, &resp)
	if err != nil {
		return err
	}
	if *asJSON {
		os.Stdout.Write(raw)
		return nil
	}
	tw := tabwriter.NewWriter(termOut, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REGION\tREACHABLE\tSTALE\tADVERTISED\tREPLICA\tAGE\tRTT\tGATEWAYS")
	for _, r := range resp.Regions {
		name := r.Name
		if r.Local {
			name += " (local)"
		}
		rtt := "-"
		if r.RTTMS != nil {
			rtt = fmt.Sprintf("%.1fms", *r.RTTMS)
		}
		var gws []string
		for _, g := range r.Gateways {
			gws = append(gws, g.Name+"="+g.Status)
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%d\t%s\t%s\t%s\n", name, r.Reachable, staleCell(r), advertisedCell(r), r.ReplicaVersion,
			(time.Duration(r.ReplicaAgeMS) * time.Millisecond).String(), rtt, strings.Join(gws, " "))
	}
	return tw.Flush()
}

// interfaceAddr returns the first IPv4 address of a network interface (the
// first IPv6 one when it has none), for register --address-from-interface.
func interfaceAddr(name string) (string, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return "", fmt.Errorf("--address-from-interface %q: %w", name, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return "", fmt.Errorf("--address-from-interface %q: %w", name, err)
	}
	var v6 string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ip4 := ipn.IP.To4(); ip4 != nil {
			return ip4.String(), nil
		}
		if v6 == "" && !ipn.IP.IsLinkLocalUnicast() {
			v6 = ipn.IP.String()
		}
	}
	if v6 == "" {
		return "", fmt.Errorf("--address-from-interface %q: the interface has no usable address", name)
	}
	return v6, nil
}
