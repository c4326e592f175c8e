package gateway

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The status page in a real headless Chromium (Debian's chromium package;
// scripts/ensure-tools.sh installs it and scripts/test.sh sets
// MERIDIAN_TEST_BROWSER=1, which turns a missing browser from a skip into a
// failure). MERIDIAN_UI_SCREENSHOT=path saves a screenshot of the page
// (make screenshot writes docs/ui.png).

// browserPath finds Chromium, or skips (fails under MERIDIAN_TEST_BROWSER=1).
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no chromium on PATH: install Debian's chromium (bash scripts/ensure-tools.sh chromium) to run the status page in a browser"
	if os.Getenv("MERIDIAN_TEST_BROWSER") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// browser is one headless Chromium tab and everything it wrote to its
// console.
type browser struct {
	ctx     context.Context
	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := browserPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.WindowSize(1360, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{ctx: ctx}
	// Console starts the browser; its messages are collected until the
	// test ends.
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// run runs actions with a deadline.
func (b *browser) run(t *testing.T, d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v\nconsole:\n%s", what, err, b.consoleText())
	}
}

// eval evaluates a JavaScript expression and decodes its value.
func eval[T any](t *testing.T, b *browser, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("browser: evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is true.
func (b *browser) waitJS(t *testing.T, d time.Duration, what, expr string) {
	t.Helper()
	b.run(t, d+time.Second, "waiting for "+what,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(d))(ctx, tg)
			return err
		}))
}

func (b *browser) consoleText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	for _, m := range b.console {
		fmt.Fprintf(&s, "  %s (%s:%d)\n", m, m.URL, m.Line)
	}
	return s.String()
}

// errors returns the console errors and exceptions so far.
func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			out = append(out, m.String()+" at "+m.URL)
		}
	}
	return out
}

// TestStatusPageInBrowser starts three federated regions (real Serf over
// 127.0.0.1, as meridian dev does), opens us-east's status page in
// Chromium, and checks that it shows the three regions, services with
// their counts, a failover decision, a service's instances with markup in
// their tags and output shown as text, and a registration made through the
// API after the page loaded, without a reload; and that the page wrote no
// console error and threw nothing.
func TestStatusPageInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium and three gateways")
	}
	b := startBrowser(t)
	us := startFedNode(t, "us-east", "us-east-1", "")
	eu := startFedNode(t, "eu-west", "eu-west-1", "", us.serfAddr())
	ap := startFedNode(t, "ap-south", "ap-south-1", "", us.serfAddr(), eu.serfAddr())
	put := func(n *fedNode, service, id, body string) {
		t.Helper()
		call(t, "PUT", n.URL()+"/v1/services/"+service+"/instances/"+id, body).want(t, 200)
	}
	put(us, "web", "web-1", `{"address":"10.0.1.1","port":8080,"zone":"us-east-a","tags":["demo"]}`)
	put(us, "web", "web-2", `{"address":"10.0.1.2","port":8080,"zone":"us-east-b","tags":["demo"],"check":{"ttl":"30s"}}`)
	call(t, "PUT", us.URL()+"/v1/services/web/instances/web-2/heartbeat", `{"status":"passing"}`).want(t, 200)
	put(us, "api", "api-1", `{"address":"10.0.1.3","port":9090,"check":{"ttl":"30s"},"status":"critical"}`)
	put(eu, "web", "web-1", `{"address":"10.0.2.1","port":8080,"zone":"eu-west-a"}`)
	put(eu, "api", "api-1", `{"address":"10.0.2.2","port":9090}`)
	// Markup where a user may put any printable text: a tag and a check's
	// output. The page must show it as text.
	put(ap, "db", "db-1", `{"address":"10.0.3.1","port":5432,"zone":"ap-south-a","tags":["<img src=x onerror=\"window.pwned=1\">"],"check":{"ttl":"30s"}}`)
	call(t, "PUT", ap.URL()+"/v1/services/db/instances/db-1/heartbeat", `{"status":"warning","output":"<b>replication lag</b> 3s"}`).want(t, 200)
	waitFor(t, 20*time.Second, "us-east to hold fresh replicas of eu-west and ap-south", func() bool {
		rs := regionsOf(t, us)
		if len(rs) != 3 {
			return false
		}
		for _, r := range rs {
			if r["reachable"] != true || r["stale"] != false {
				return false
			}
		}
		svcs := call(t, "GET", us.URL()+"/v1/services", "").raw
		return strings.Contains(svcs, `"ap-south":{"instances":1`) && strings.Contains(svcs, `"eu-west":{"instances":1`)
	})
	// Two routing decisions: api fails over (its only us-east instance is
	// critical), db is only in ap-south.
	call(t, "GET", us.URL()+"/v1/lookup/api", "").want(t, 200)
	call(t, "GET", us.URL()+"/v1/lookup/db", "").want(t, 200)

	b.run(t, 20*time.Second, "loading the page", chromedp.Navigate(us.URL()+"/"))
	b.waitJS(t, 10*time.Second, "three regions", `document.querySelectorAll("#regions tbody tr").length === 3`)
	regions := eval[[]string](t, b, `[...document.querySelectorAll("#regions tbody tr")].map(r => r.dataset.region).sort()`)
	if got := strings.Join(regions, ","); got != "ap-south,eu-west,us-east" {
		t.Fatalf("regions shown: %s, want ap-south,eu-west,us-east", got)
	}
	b.waitJS(t, 10*time.Second, "the services", `document.querySelector('#services tr[data-service="web"]') !== null`)
	webUS := eval[string](t, b, `document.querySelector('#services tr[data-service="web"] td[data-region="us-east"]').textContent`)
	if !strings.Contains(webUS, "2 passing") || !strings.Contains(webUS, "100%") {
		t.Errorf("web in us-east shows %q, want 2 passing and 100%%", webUS)
	}
	apiUS := eval[string](t, b, `document.querySelector('#services tr[data-service="api"] td[data-region="us-east"]').textContent`)
	if !strings.Contains(apiUS, "1 critical") || !strings.Contains(apiUS, "0%") {
		t.Errorf("api in us-east shows %q, want 1 critical and 0%%", apiUS)
	}
	b.waitJS(t, 10*time.Second, "the failover decisions", `[...document.querySelectorAll("#decisions tbody tr")].some(r => r.textContent.includes("failover") && r.textContent.includes("db"))`)
	dec := eval[string](t, b, `document.querySelector("#decisions tbody").textContent`)
	if !strings.Contains(dec, "api") || !strings.Contains(dec, "ap-south") {
		t.Errorf("decisions shown: %q, want api's failover and db routed to ap-south", dec)
	}

	// A registration made through the API after the page loaded appears
	// without a reload (the marker survives only within one page load).
	eval[bool](t, b, `window.loadMarker = true`)
	put(eu, "cache", "cache-1", `{"address":"10.0.2.9","port":6379}`)
	start := time.Now()
	b.waitJS(t, 15*time.Second, "the new service cache from eu-west", `document.querySelector('#services tr[data-service="cache"] td[data-region="eu-west"]') !== null`)
	t.Logf("a registration in eu-west showed on us-east's page after %s", time.Since(start).Round(time.Millisecond))
	if !eval[bool](t, b, `window.loadMarker === true`) {
		t.Fatal("the page was reloaded")
	}

	// A service's instances, with markup shown as text.
	b.run(t, 10*time.Second, "clicking db", chromedp.Click(chromedp.CSS(`#services tr[data-service="db"] td`)))
	b.waitJS(t, 10*time.Second, "db's instances", `document.querySelector('#instances tr[data-instance="ap-south/db-1"]') !== null`)
	row := eval[string](t, b, `document.querySelector('#instances tr[data-instance="ap-south/db-1"]').textContent`)
	for _, want := range []string{`<img src=x onerror="window.pwned=1">`, "<b>replication lag</b> 3s", "warning", "TTL 30s", "10.0.3.1:5432"} {
		if !strings.Contains(row, want) {
			t.Errorf("db-1's row %q lacks %q", row, want)
		}
	}
	if n := eval[int](t, b, `document.querySelectorAll("#instances img, #instances b").length`); n != 0 {
		t.Errorf("%d elements made from an instance's tags or output: the page renders markup", n)
	}
	if eval[bool](t, b, `window.pwned === 1`) {
		t.Error("an instance's tag ran script in the page")
	}

	if path := os.Getenv("MERIDIAN_UI_SCREENSHOT"); path != "" {
		b.run(t, 10*time.Second, "showing web's instances", chromedp.Click(chromedp.CSS(`#services tr[data-service="web"] td`)))
		b.waitJS(t, 10*time.Second, "web's instances", `document.querySelector('#instances tr[data-instance="eu-west/web-1"]') !== null`)
		ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(png))
	}
	if errs := b.errors(); len(errs) > 0 {
		t.Fatalf("the page wrote %d console errors or exceptions:\n%s", len(errs), strings.Join(errs, "\n"))
	}
	t.Logf("console (no errors):\n%s", b.consoleText())
}

// TestStatusPageWithACLs: under the deny policy the page says a token is
// needed; typed into its token field, the token is kept in sessionStorage,
// sent as X-Meridian-Token, and the data appears.
func TestStatusPageWithACLs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	b := startBrowser(t)
	a := startAgent(t, AgentConfig{Region: "us-east", ACL: ACLConfig{DefaultPolicy: "deny", InitialToken: rootSecret}})
	callWithHeader(t, "PUT", a.URL()+"/v1/services/web/instances/web-1", `{"address":"10.0.1.1","port":80}`,
		TokenHeader, rootSecret).want(t, 200)
	b.run(t, 20*time.Second, "loading the page", chromedp.Navigate(a.URL()+"/ui/"))
	b.waitJS(t, 10*time.Second, "the token-required note", `document.querySelector("#services-note").textContent.includes("token")`)
	if n := eval[int](t, b, `document.querySelectorAll("#services tbody tr").length`); n != 0 {
		t.Fatalf("%d services shown without a token", n)
	}
	b.run(t, 10*time.Second, "entering the token",
		chromedp.SendKeys(chromedp.CSS("#token"), rootSecret),
		chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	b.waitJS(t, 10*time.Second, "web with the token", `document.querySelector('#services tr[data-service="web"]') !== null`)
	if got := eval[string](t, b, `sessionStorage.getItem("meridian.token")`); got != rootSecret {
		t.Fatalf("sessionStorage holds %q, want the token", got)
	}
	if eval[bool](t, b, `localStorage.length > 0 || document.cookie !== ""`) {
		t.Error("the token went to localStorage or a cookie")
	}
	// A reload keeps the token for the session.
	b.run(t, 20*time.Second, "reloading", chromedp.Reload())
	b.waitJS(t, 10*time.Second, "web after a reload", `document.querySelector('#services tr[data-service="web"]') !== null`)
	// Exceptions are never fine; the 401s before the token are logged by
	// the browser as failed loads, which is expected here.
	for _, e := range b.errors() {
		if !strings.Contains(e, "401") {
			t.Errorf("console: %s", e)
		}
	}
}

// TestStatusPageAssets checks the page's headers over plain HTTP: a strict
// Content-Security-Policy, the right content types, JSON errors.
func TestStatusPageAssets(t *testing.T) {
	a := startAgent(t, AgentConfig{})
	base := a.URL()
	for _, c := range []struct {
		path, ctype string
	}{{"/", "text/html; charset=utf-8"}, {"/ui/", "text/html; charset=utf-8"}, {"/ui/ui.js", "text/javascript; charset=utf-8"},
		{"/ui/ui.css", "text/css; charset=utf-8"}, {"/ui/favicon.svg", "image/svg+xml"}} {
		resp, err := http.Get(base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != c.ctype || !strings.Contains(csp, "script-src 'self';") ||
			strings.Contains(csp, "unsafe") || !strings.Contains(csp, "require-trusted-types-for 'script'") ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d %q CSP %q", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), csp)
		}
		// Conditional GET with the ETag.
		req, _ := http.NewRequest("GET", base+c.path, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		r2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.StatusCode != 304 {
			t.Errorf("GET %s with its ETag: %d, want 304", c.path, r2.StatusCode)
		}
	}
	call(t, "GET", base+"/ui/nothing.js", "").want(t, 404)
	call(t, "POST", base+"/", "").want(t, 405)
	call(t, "GET", base+"/elsewhere", "").want(t, 404)
	// The page embeds nothing from elsewhere.
	for _, f := range []string{"ui/index.html", "ui/ui.js", "ui/ui.css"} {
		b, _ := uiFiles.ReadFile(f)
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") || strings.Contains(string(b), "innerHTML") {
			t.Errorf("%s names another origin or uses innerHTML", f)
		}
	}
}
