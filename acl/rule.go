package acl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Access is a rule's level: read, write or deny.
type Access string

// The three access levels. Write implies read; deny beats both.
const (
	AccessRead  Access = "read"
	AccessWrite Access = "write"
	AccessDeny  Access = "deny"
)

// Rule is one ACL rule. Exactly one of Service, ServicePrefix, Operator and
// ACL is set; Access goes with Service and ServicePrefix.
//
//	{"service": "web", "access": "write"}
//	{"service_prefix": "web-", "access": "read"}   ("" matches every service)
//	{"operator": "read"}
//	{"acl": "write"}
type Rule struct {
	Service       string  `json:"service,omitempty"`
	ServicePrefix *string `json:"service_prefix,omitempty"`
	Access        Access  `json:"access,omitempty"`
	Operator      Access  `json:"operator,omitempty"`
	ACL           Access  `json:"acl,omitempty"`
}

// FieldError is a decoding error naming the offending field, e.g.
// "rules[2].access".
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Limits of a token request.
const (
	MaxRules          = 256
	MaxDescription    = 256
	maxNameLen        = 63
	MaxRequestBytes   = 64 << 10
	ruleFieldsMessage = "service, service_prefix, operator, acl, access"
)

// validName checks a service name (full=true: a DNS label) or a prefix of
// one (full=false: may be empty, may end in '-').
func validName(s string, full bool) error {
	if len(s) > maxNameLen {
		return fmt.Errorf("longer than %d characters", maxNameLen)
	}
	if full && s == "" {
		return fmt.Errorf("must not be empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%q: only lowercase a-z, 0-9 and '-' are allowed", s)
		}
	}
	if full && (s[0] == '-' || s[len(s)-1] == '-') {
		return fmt.Errorf("%q: must not start or end with '-'", s)
	}
	return nil
}

// Validate checks a rule, naming the field relative to the rule.
func (r Rule) Validate() error {
	kinds := 0
	if r.Service != "" {
		kinds++
	}
	if r.ServicePrefix != nil {
		kinds++
	}
	if r.Operator != "" {
		kinds++
	}
	if r.ACL != "" {
		kinds++
	}
	if kinds != 1 {
		return &FieldError{Field: "rule", Msg: "needs exactly one of service, service_prefix, operator and acl"}
	}
	switch {
	case r.Service != "" || r.ServicePrefix != nil:
		if r.Service != "" {
			if err := validName(r.Service, true); err != nil {
				return &FieldError{Field: "service", Msg: err.Error()}
			}
		} else if err := validName(*r.ServicePrefix, false); err != nil {
			return &FieldError{Field: "service_prefix", Msg: err.Error()}
		}
		switch r.Access {
		case AccessRead, AccessWrite, AccessDeny:
		case "":
			return &FieldError{Field: "access", Msg: "is required with service and service_prefix (read, write or deny)"}
		default:
			return &FieldError{Field: "access", Msg: fmt.Sprintf("%q is not read, write or deny", r.Access)}
		}
	case r.Operator != "":
		if r.Access != "" {
			return &FieldError{Field: "access", Msg: `goes with service and service_prefix only; write {"operator": "read"}`}
		}
		switch r.Operator {
		case AccessRead, AccessWrite, AccessDeny:
		default:
			return &FieldError{Field: "operator", Msg: fmt.Sprintf("%q is not read, write or deny", r.Operator)}
		}
	case r.ACL != "":
		if r.Access != "" {
			return &FieldError{Field: "access", Msg: `goes with service and service_prefix only; write {"acl": "write"}`}
		}
		switch r.ACL {
		case AccessWrite, AccessDeny:
		default:
			return &FieldError{Field: "acl", Msg: fmt.Sprintf("%q is not write or deny", r.ACL)}
		}
	}
	return nil
}

// String is the rule in the CLI's form: service:web:write,
// service_prefix:web:read, operator:read, acl:write.
func (r Rule) String() string {
	switch {
	case r.Service != "":
		return "service:" + r.Service + ":" + string(r.Access)
	case r.ServicePrefix != nil:
		return "service_prefix:" + *r.ServicePrefix + ":" + string(r.Access)
	case r.Operator != "":
		return "operator:" + string(r.Operator)
	case r.ACL != "":
		return "acl:" + string(r.ACL)
	}
	return "(empty rule)"
}

// ParseRule reads the CLI's form of a rule (see String).
func ParseRule(s string) (Rule, error) {
	parts := strings.Split(s, ":")
	var r Rule
	switch {
	case len(parts) == 3 && parts[0] == "service":
		r = Rule{Service: parts[1], Access: Access(parts[2])}
	case len(parts) == 3 && parts[0] == "service_prefix":
		p := parts[1]
		r = Rule{ServicePrefix: &p, Access: Access(parts[2])}
	case len(parts) == 2 && parts[0] == "operator":
		r = Rule{Operator: Access(parts[1])}
	case len(parts) == 2 && parts[0] == "acl":
		r = Rule{ACL: Access(parts[1])}
	default:
		return Rule{}, fmt.Errorf("rule %q: want service:NAME:ACCESS, service_prefix:PREFIX:ACCESS, operator:ACCESS or acl:write", s)
	}
	if err := r.Validate(); err != nil {
		return Rule{}, fmt.Errorf("rule %q: %w", s, err)
	}
	return r, nil
}

// UnmarshalJSON decodes one rule strictly: unknown fields, non-string
// values and invalid rules are errors naming the field.
func (r *Rule) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		return &FieldError{Field: "rule", Msg: "must be a JSON object with one of " + ruleFieldsMessage}
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out Rule
	for _, k := range keys {
		var s string
		if err := json.Unmarshal(raw[k], &s); err != nil || bytes.Equal(bytes.TrimSpace(raw[k]), []byte("null")) {
			if k == "service" || k == "service_prefix" || k == "operator" || k == "acl" || k == "access" {
				return &FieldError{Field: k, Msg: "must be a string"}
			}
		}
		switch k {
		case "service":
			if s == "" {
				return &FieldError{Field: "service", Msg: "must not be empty (use service_prefix \"\" for every service)"}
			}
			out.Service = s
		case "service_prefix":
			p := s
			out.ServicePrefix = &p
		case "operator":
			out.Operator = Access(s)
		case "acl":
			out.ACL = Access(s)
		case "access":
			out.Access = Access(s)
		default:
			return &FieldError{Field: k, Msg: "unknown field (a rule has " + ruleFieldsMessage + ")"}
		}
	}
	if err := out.Validate(); err != nil {
		return err
	}
	*r = out
	return nil
}

// TokenRequest is the body of PUT /v1/acl/tokens.
type TokenRequest struct {
	Description string `json:"description"`
	Rules       []Rule `json:"rules"`
}

// DecodeTokenRequest decodes and validates a token request strictly.
// Errors are *FieldError naming the field ("rules[1].access").
func DecodeTokenRequest(b []byte) (TokenRequest, error) {
	if len(b) > MaxRequestBytes {
		return TokenRequest{}, &FieldError{Field: "body", Msg: fmt.Sprintf("larger than %d bytes", MaxRequestBytes)}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || raw == nil {
		return TokenRequest{}, &FieldError{Field: "body", Msg: "must be a JSON object {\"description\": ..., \"rules\": [...]}"}
	}
	var req TokenRequest
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "description":
			if err := json.Unmarshal(raw[k], &req.Description); err != nil {
				return TokenRequest{}, &FieldError{Field: "description", Msg: "must be a string"}
			}
			if len(req.Description) > MaxDescription {
				return TokenRequest{}, &FieldError{Field: "description", Msg: fmt.Sprintf("longer than %d bytes", MaxDescription)}
			}
		case "rules":
			var list []json.RawMessage
			if err := json.Unmarshal(raw[k], &list); err != nil {
				return TokenRequest{}, &FieldError{Field: "rules", Msg: "must be a list of rules"}
			}
			if len(list) > MaxRules {
				return TokenRequest{}, &FieldError{Field: "rules", Msg: fmt.Sprintf("more than %d rules", MaxRules)}
			}
			req.Rules = make([]Rule, 0, len(list))
			for i, rb := range list {
				var r Rule
				if err := r.UnmarshalJSON(rb); err != nil {
					fe, ok := err.(*FieldError)
					if !ok {
						return TokenRequest{}, err
					}
					f := fmt.Sprintf("rules[%d]", i)
					if fe.Field != "rule" {
						f += "." + fe.Field
					}
					return TokenRequest{}, &FieldError{Field: f, Msg: fe.Msg}
				}
				req.Rules = append(req.Rules, r)
			}
		default:
			return TokenRequest{}, &FieldError{Field: k, Msg: "unknown field (a token request has description and rules)"}
		}
	}
	if req.Rules == nil {
		req.Rules = []Rule{}
	}
	return req, nil
}
