package acl

import (
	"sort"
	"strings"
)

// Resource is what a permission is about.
type Resource uint8

// Resources.
const (
	ResourceService Resource = iota + 1
	ResourceOperator
	ResourceACL
)

// Perm is one permission a request needs: service:web:write,
// operator:read, acl:write.
type Perm struct {
	Resource Resource
	Name     string // the service, for ResourceService
	Write    bool   // write, else read
}

// ServiceRead and the others build permissions.
func ServiceRead(name string) Perm  { return Perm{Resource: ResourceService, Name: name} }
func ServiceWrite(name string) Perm { return Perm{Resource: ResourceService, Name: name, Write: true} }

// Operator and ACL permissions.
var (
	OperatorRead  = Perm{Resource: ResourceOperator}
	OperatorWrite = Perm{Resource: ResourceOperator, Write: true}
	ACLWrite      = Perm{Resource: ResourceACL, Write: true}
)

func (p Perm) level() string {
	if p.Write {
		return "write"
	}
	return "read"
}

// String names the permission as 403 answers do: "service:web:write".
func (p Perm) String() string {
	switch p.Resource {
	case ResourceService:
		return "service:" + p.Name + ":" + p.level()
	case ResourceOperator:
		return "operator:" + p.level()
	case ResourceACL:
		return "acl:" + p.level()
	}
	return "none"
}

// Decision is an Authorizer's answer before the default policy applies.
type Decision uint8

// Decisions. Default means no rule matched: the gateway's default policy
// decides.
const (
	Default Decision = iota
	Allow
	Deny
)

// Authorizer answers permission questions for one token. It is immutable
// and safe for concurrent use.
type Authorizer struct {
	management bool
	exact      map[string]Access
	prefixes   []prefixRule // longest first
	operator   Access
	acl        Access
}

type prefixRule struct {
	prefix string
	access Access
}

// merge combines two rules on the same resource: deny wins a tie, else
// the wider access.
func merge(a, b Access) Access {
	switch {
	case a == "":
		return b
	case a == AccessDeny || b == AccessDeny:
		return AccessDeny
	case a == AccessWrite || b == AccessWrite:
		return AccessWrite
	}
	return AccessRead
}

// NewAuthorizer compiles rules (assumed valid, see Rule.Validate).
func NewAuthorizer(rules []Rule) *Authorizer {
	a := &Authorizer{exact: map[string]Access{}}
	pre := map[string]Access{}
	for _, r := range rules {
		switch {
		case r.Service != "":
			a.exact[r.Service] = merge(a.exact[r.Service], r.Access)
		case r.ServicePrefix != nil:
			pre[*r.ServicePrefix] = merge(pre[*r.ServicePrefix], r.Access)
		case r.Operator != "":
			a.operator = merge(a.operator, r.Operator)
		case r.ACL != "":
			a.acl = merge(a.acl, r.ACL)
		}
	}
	for p, acc := range pre {
		a.prefixes = append(a.prefixes, prefixRule{p, acc})
	}
	sort.Slice(a.prefixes, func(i, j int) bool {
		if len(a.prefixes[i].prefix) != len(a.prefixes[j].prefix) {
			return len(a.prefixes[i].prefix) > len(a.prefixes[j].prefix)
		}
		return a.prefixes[i].prefix < a.prefixes[j].prefix
	})
	return a
}

// Management is an Authorizer that allows everything.
func Management() *Authorizer { return &Authorizer{management: true} }

// IsManagement reports whether the authorizer allows everything.
func (a *Authorizer) IsManagement() bool { return a.management }

// serviceAccess is the access of the rule that governs a service: an exact
// rule beats every prefix, the longest matching prefix beats shorter ones.
func (a *Authorizer) serviceAccess(name string) Access {
	if acc, ok := a.exact[name]; ok {
		return acc
	}
	for _, p := range a.prefixes {
		if strings.HasPrefix(name, p.prefix) {
			return p.access
		}
	}
	return ""
}

func decide(acc Access, write bool) Decision {
	switch acc {
	case "":
		return Default
	case AccessDeny:
		return Deny
	case AccessWrite:
		return Allow
	case AccessRead:
		if write {
			return Deny
		}
		return Allow
	}
	return Deny
}

// Decide answers p: Allow, Deny, or Default when no rule speaks to it.
func (a *Authorizer) Decide(p Perm) Decision {
	if a.management {
		return Allow
	}
	switch p.Resource {
	case ResourceService:
		return decide(a.serviceAccess(p.Name), p.Write)
	case ResourceOperator:
		return decide(a.operator, p.Write)
	case ResourceACL:
		if !p.Write && a.acl == AccessWrite {
			return Allow
		}
		return decide(a.acl, p.Write)
	}
	return Deny
}

// Allowed answers p with the default policy (allow when defaultAllow)
// for what no rule decides.
func (a *Authorizer) Allowed(p Perm, defaultAllow bool) bool {
	switch a.Decide(p) {
	case Allow:
		return true
	case Default:
		return defaultAllow
	}
	return false
}

// ServiceRead, ServiceWrite, OperatorRead, OperatorWrite and ACLWrite are
// Allowed under a default-deny policy.
func (a *Authorizer) ServiceRead(name string) bool  { return a.Allowed(ServiceRead(name), false) }
func (a *Authorizer) ServiceWrite(name string) bool { return a.Allowed(ServiceWrite(name), false) }
func (a *Authorizer) OperatorRead() bool            { return a.Allowed(OperatorRead, false) }
func (a *Authorizer) OperatorWrite() bool           { return a.Allowed(OperatorWrite, false) }
func (a *Authorizer) ACLWrite() bool                { return a.Allowed(ACLWrite, false) }
