package acl

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func mustRules(t *testing.T, specs ...string) []Rule {
	t.Helper()
	var out []Rule
	for _, s := range specs {
		r, err := ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestPrecedence(t *testing.T) {
	cases := []struct {
		name  string
		rules []string
		perm  Perm
		want  Decision
	}{
		{"no rules", nil, ServiceRead("web"), Default},
		{"exact read allows read", []string{"service:web:read"}, ServiceRead("web"), Allow},
		{"exact read denies write", []string{"service:web:read"}, ServiceWrite("web"), Deny},
		{"write implies read", []string{"service:web:write"}, ServiceRead("web"), Allow},
		{"exact does not match longer name", []string{"service:web:write"}, ServiceWrite("web-1"), Default},
		{"prefix matches", []string{"service_prefix:web:write"}, ServiceWrite("web-1"), Allow},
		{"prefix does not match api", []string{"service_prefix:web:write"}, ServiceWrite("api"), Default},
		{"empty prefix matches all", []string{"service_prefix::read"}, ServiceRead("api"), Allow},
		{"exact beats prefix (deny prefix)", []string{"service_prefix:w:deny", "service:web:read"}, ServiceRead("web"), Allow},
		{"exact beats prefix (deny exact)", []string{"service_prefix:w:write", "service:web:deny"}, ServiceRead("web"), Deny},
		{"longest prefix wins (deny longer)", []string{"service_prefix:web:write", "service_prefix:web-secret:deny"}, ServiceRead("web-secret-1"), Deny},
		{"longest prefix wins (allow longer)", []string{"service_prefix::deny", "service_prefix:web:read"}, ServiceRead("web-1"), Allow},
		{"longest prefix wins, shorter used elsewhere", []string{"service_prefix::deny", "service_prefix:web:read"}, ServiceRead("api"), Deny},
		{"tie: deny wins over write", []string{"service:web:write", "service:web:deny"}, ServiceRead("web"), Deny},
		{"tie: deny wins on prefix", []string{"service_prefix:web:deny", "service_prefix:web:write"}, ServiceWrite("web"), Deny},
		{"tie: read+write is write", []string{"service:web:read", "service:web:write"}, ServiceWrite("web"), Allow},
		{"operator read", []string{"operator:read"}, OperatorRead, Allow},
		{"operator read not write", []string{"operator:read"}, OperatorWrite, Deny},
		{"operator write", []string{"operator:write"}, OperatorWrite, Allow},
		{"operator unset", []string{"service:web:write"}, OperatorRead, Default},
		{"acl write", []string{"acl:write"}, ACLWrite, Allow},
		{"acl deny", []string{"acl:deny"}, ACLWrite, Deny},
		{"service rules do not grant operator", []string{"service_prefix::write"}, OperatorWrite, Default},
	}
	for _, c := range cases {
		a := NewAuthorizer(mustRules(t, c.rules...))
		if got := a.Decide(c.perm); got != c.want {
			t.Errorf("%s: rules %v, %s: got %v, want %v", c.name, c.rules, c.perm, got, c.want)
		}
	}
	m := Management()
	for _, p := range []Perm{ServiceWrite("x"), OperatorWrite, ACLWrite} {
		if !m.Allowed(p, false) {
			t.Errorf("management token denied %s", p)
		}
	}
	a := NewAuthorizer(mustRules(t, "service:web:deny"))
	if a.Allowed(ServiceRead("web"), true) {
		t.Error("explicit deny allowed under default allow")
	}
	if !a.Allowed(ServiceRead("api"), true) || a.Allowed(ServiceRead("api"), false) {
		t.Error("unmatched permission does not follow the default policy")
	}
}

func TestPermString(t *testing.T) {
	for p, want := range map[Perm]string{ServiceWrite("web"): "service:web:write", ServiceRead("api"): "service:api:read",
		OperatorRead: "operator:read", OperatorWrite: "operator:write", ACLWrite: "acl:write"} {
		if got := p.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestDecodeTokenRequest(t *testing.T) {
	req, err := DecodeTokenRequest([]byte(`{"description":"web deployer","rules":[{"service_prefix":"web","access":"write"},{"operator":"read"},{"acl":"write"},{"service":"db","access":"deny"},{"service_prefix":"","access":"read"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range req.Rules {
		got = append(got, r.String())
	}
	if want := "service_prefix:web:write operator:read acl:write service:db:deny service_prefix::read"; strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", strings.Join(got, " "), want)
	}
	bad := []struct{ body, field string }{
		{`{"description":"x","rules":[],"extra":1}`, "extra"},
		{`{"rules":[{"service":"web","access":"write","colour":"red"}]}`, "rules[0].colour"},
		{`{"rules":[{"service":"web"}]}`, "rules[0].access"},
		{`{"rules":[{"service":"web","access":"admin"}]}`, "rules[0].access"},
		{`{"rules":[{"service":"web","service_prefix":"w","access":"read"}]}`, "rules[0]"},
		{`{"rules":[{"access":"read"}]}`, "rules[0]"},
		{`{"rules":[{"operator":"read"},{"operator":"root"}]}`, "rules[1].operator"},
		{`{"rules":[{"operator":"read","access":"read"}]}`, "rules[0].access"},
		{`{"rules":[{"acl":"read"}]}`, "rules[0].acl"},
		{`{"rules":[{"service":"Web!","access":"read"}]}`, "rules[0].service"},
		{`{"rules":[{"service":7,"access":"read"}]}`, "rules[0].service"},
		{`{"rules":[{"service":null,"access":"read"}]}`, "rules[0].service"},
		{`{"rules":{"service":"web"}}`, "rules"},
		{`{"rules":["service:web:read"]}`, "rules[0]"},
		{`{"description":5}`, "description"},
		{`[]`, "body"},
		{`null`, "body"},
		{`{`, "body"},
	}
	for _, b := range bad {
		_, err := DecodeTokenRequest([]byte(b.body))
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != b.field {
			t.Errorf("%s: got error %v, want one naming field %q", b.body, err, b.field)
		}
	}
}

func TestParseRule(t *testing.T) {
	for _, s := range []string{"service:web:read", "service_prefix:web:write", "service_prefix::deny", "operator:write", "acl:write"} {
		r, err := ParseRule(s)
		if err != nil || r.String() != s {
			t.Errorf("ParseRule(%q) = %v, %v; want it back", s, r, err)
		}
	}
	for _, s := range []string{"", "service:web", "service::read", "operator:admin", "acl:read", "node:x:read", "service:web:read:x"} {
		if _, err := ParseRule(s); err == nil {
			t.Errorf("ParseRule(%q): no error", s)
		}
	}
}

func TestTable(t *testing.T) {
	h := HashSecret("s3cret")
	tab, err := NewTable(7, []Token{
		{ID: "b", SecretHash: h.String(), Rules: mustRules(t, "service:web:read")},
		{ID: "a", SecretHash: HashSecret("root").String(), Management: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	e, ok := tab.ByHash(HashSecret("s3cret"))
	if !ok || e.Token.ID != "b" || !e.Authz.ServiceRead("web") || e.Authz.ServiceWrite("web") {
		t.Fatalf("ByHash: %v %v", e, ok)
	}
	if _, ok := tab.ByHash(HashSecret("s3cret ")); ok {
		t.Fatal("a different secret resolved")
	}
	if e, _ := tab.ByID("a"); !e.Authz.IsManagement() {
		t.Fatal("management token is not management")
	}
	if toks := tab.Tokens(); len(toks) != 2 || toks[0].ID != "a" || tab.Version() != 7 {
		t.Fatalf("Tokens: %v", toks)
	}
	if _, err := NewTable(1, []Token{{ID: "x", SecretHash: "zz"}}); err == nil {
		t.Fatal("bad hash accepted")
	}
}

func TestReplication(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := NewReplication(ReplicationConfig{Wait: time.Second, StaleAfter: 3 * time.Second}, 0, time.Time{})
	if st := r.Status(t0); !st.Stale || st.Age != -1 {
		t.Fatalf("never synced: %+v", st)
	}
	if _, ok := r.Next(nil); ok {
		t.Fatal("a fetch without peers")
	}
	f, _ := r.Next([]string{"a", "b"})
	if f.Peer != "a" || f.Index != 0 {
		t.Fatalf("first fetch %+v", f)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 30; i++ {
		if d := r.Failed("refused", rng); d <= 0 || d > r.Config().BackoffMax+time.Millisecond {
			t.Fatalf("backoff %s out of range", d)
		}
	}
	if f, _ := r.Next([]string{"a", "b"}); f.Peer == "a" && r.rotate%2 == 1 {
		t.Fatal("did not rotate")
	}
	if !r.Done(t0, "a", 5) {
		t.Fatal("first success is not a change")
	}
	if r.Done(t0.Add(time.Second), "a", 5) {
		t.Fatal("same version reported as a change")
	}
	if st := r.Status(t0.Add(2 * time.Second)); st.Stale || st.Version != 5 || st.Age != time.Second {
		t.Fatalf("fresh: %+v", st)
	}
	if st := r.Status(t0.Add(10 * time.Second)); !st.Stale {
		t.Fatalf("old replica not stale: %+v", st)
	}
}

func FuzzDecodeRules(f *testing.F) {
	for _, s := range []string{`{"service":"web","access":"write"}`, `{"service_prefix":"","access":"read"}`, `{"operator":"read"}`, `{"acl":"write"}`, `{"x":1}`, `null`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Rule
		if err := r.UnmarshalJSON(b); err != nil {
			if _, ok := err.(*FieldError); !ok {
				t.Fatalf("error %T %v is not a *FieldError", err, err)
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded an invalid rule %+v: %v", r, err)
		}
		back, err := ParseRule(r.String())
		if err != nil || back.String() != r.String() {
			t.Fatalf("rule %q does not survive its string form: %v", r.String(), err)
		}
		NewAuthorizer([]Rule{r}).Decide(ServiceWrite("web"))
	})
}

func FuzzDecodeTokenRequest(f *testing.F) {
	for _, s := range []string{`{"description":"d","rules":[{"service":"web","access":"write"},{"operator":"read"}]}`, `{}`, `{"rules":null}`, `{"rules":[{}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeTokenRequest(b)
		if err != nil {
			if _, ok := err.(*FieldError); !ok {
				t.Fatalf("error %T %v is not a *FieldError", err, err)
			}
			return
		}
		if len(req.Description) > MaxDescription || len(req.Rules) > MaxRules || req.Rules == nil {
			t.Fatalf("limits not enforced: %d, %d", len(req.Description), len(req.Rules))
		}
		for i, r := range req.Rules {
			if err := r.Validate(); err != nil {
				t.Fatalf("rules[%d] invalid: %v", i, err)
			}
		}
		if _, err := NewTable(1, []Token{{ID: "x", SecretHash: HashSecret("s").String(), Rules: req.Rules}}); err != nil {
			t.Fatal(err)
		}
	})
}
