package acl

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
)

// Hash is the SHA-256 of a token's secret: the only form in which a
// secret is stored, replicated or compared.
type Hash [sha256.Size]byte

// HashSecret hashes a secret.
func HashSecret(secret string) Hash { return sha256.Sum256([]byte(secret)) }

// String is the hash in hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash reads a hex hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("secret hash %q is not %d hex bytes", s, len(h))
	}
	copy(h[:], b)
	return h, nil
}

// Token is a stored token: everything but the secret, whose hash it keeps.
type Token struct {
	ID          string `json:"id"` // the accessor id, a random UUID; safe to show
	SecretHash  string `json:"secret_hash"`
	Description string `json:"description"`
	Rules       []Rule `json:"rules"`
	// Management tokens may do everything (the initial token).
	Management  bool   `json:"management,omitempty"`
	CreateIndex uint64 `json:"create_index"`
}

// View is a token as the API shows it: no secret, no hash.
type View struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Rules       []Rule `json:"rules"`
	Management  bool   `json:"management,omitempty"`
	CreateIndex uint64 `json:"create_index"`
}

// View returns the token without its hash.
func (t Token) View() View {
	rules := t.Rules
	if rules == nil {
		rules = []Rule{}
	}
	return View{ID: t.ID, Description: t.Description, Rules: rules, Management: t.Management, CreateIndex: t.CreateIndex}
}

// Entry is a resolved token: the token and its compiled authorizer.
type Entry struct {
	Token Token
	Authz *Authorizer
}

// Table is an immutable set of tokens at a version, indexed by accessor id
// and by secret hash.
type Table struct {
	version uint64
	byID    map[string]*Entry
	byHash  map[Hash]*Entry
}

// NewTable indexes tokens. A token with an invalid hash or rule is an
// error (a corrupt store or replica must not half-authorize).
func NewTable(version uint64, tokens []Token) (*Table, error) {
	t := &Table{version: version, byID: make(map[string]*Entry, len(tokens)), byHash: make(map[Hash]*Entry, len(tokens))}
	for _, tok := range tokens {
		h, err := ParseHash(tok.SecretHash)
		if err != nil {
			return nil, fmt.Errorf("token %s: %w", tok.ID, err)
		}
		for i, r := range tok.Rules {
			if err := r.Validate(); err != nil {
				return nil, fmt.Errorf("token %s: rules[%d]: %w", tok.ID, i, err)
			}
		}
		e := &Entry{Token: tok}
		if tok.Management {
			e.Authz = Management()
		} else {
			e.Authz = NewAuthorizer(tok.Rules)
		}
		t.byID[tok.ID] = e
		t.byHash[h] = e
	}
	return t, nil
}

// EmptyTable is a table without tokens at version 0.
func EmptyTable() *Table { t, _ := NewTable(0, nil); return t }

// Version is the table's version (grows with every change at the primary).
func (t *Table) Version() uint64 { return t.version }

// Len is the number of tokens.
func (t *Table) Len() int { return len(t.byID) }

// ByID looks a token up by accessor id.
func (t *Table) ByID(id string) (*Entry, bool) { e, ok := t.byID[id]; return e, ok }

// ByHash looks a token up by the hash of its secret.
func (t *Table) ByHash(h Hash) (*Entry, bool) { e, ok := t.byHash[h]; return e, ok }

// Tokens returns the tokens sorted by accessor id.
func (t *Table) Tokens() []Token {
	out := make([]Token, 0, len(t.byID))
	for _, e := range t.byID {
		out = append(out, e.Token)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
