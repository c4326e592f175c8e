package serfmember

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// Gossip encryption: Serf's keyring (memberlist encrypts every gossip
// message with AES-GCM under the primary key and decrypts with any key of
// the ring). A gateway without the key, or with another one, cannot join,
// and nothing it sends is accepted: with a keyring, memberlist refuses
// unencrypted messages in both directions (GossipVerifyIncoming/Outgoing).

// ParseKey decodes a gossip key: standard base64 of 16, 24 or 32 bytes
// (AES-128, -192 or -256). Its errors never repeat the key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty key; want base64 of 16, 24 or 32 bytes (meridian keyring generate makes one)")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not valid standard base64 (%v); want base64 of 16, 24 or 32 bytes", err)
	}
	if err := memberlist.ValidateKey(b); err != nil {
		return nil, fmt.Errorf("decodes to %d bytes; want 16, 24 or 32 (AES-128, -192 or -256)", len(b))
	}
	return b, nil
}

// EncodeKey is the standard base64 form of a key, as Serf lists it.
func EncodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// ReadKeyringFile reads Serf's keyring file: a JSON array of base64 keys,
// the first being the primary key. Errors name the file, never a key.
func ReadKeyringFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading keyring file: %w", err)
	}
	var enc []string
	if err := json.Unmarshal(b, &enc); err != nil {
		return nil, fmt.Errorf("keyring file %s: want a JSON array of base64 keys: %v", path, err)
	}
	if len(enc) == 0 {
		return nil, fmt.Errorf("keyring file %s contains no keys", path)
	}
	keys := make([][]byte, 0, len(enc))
	for i, e := range enc {
		k, err := ParseKey(e)
		if err != nil {
			return nil, fmt.Errorf("keyring file %s: key %d: %w", path, i, err)
		}
		if !slices.ContainsFunc(keys, func(x []byte) bool { return bytes.Equal(x, k) }) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// WriteKeyringFile writes keys (the first is primary) in Serf's format,
// readable by the owner only, creating the directory if need be.
func WriteKeyringFile(path string, keys [][]byte) error {
	enc := make([]string, len(keys))
	for i, k := range keys {
		enc[i] = EncodeKey(k)
	}
	b, err := json.MarshalIndent(enc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing keyring file: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("writing keyring file: %w", err)
	}
	return nil
}

// KeyringSource says where LoadKeyring found the keys.
type KeyringSource int

// Keyring sources.
const (
	KeyringOff         KeyringSource = iota // no key: gossip is not encrypted
	KeyringFromEncrypt                      // --encrypt, no keyring file
	KeyringFromFile                         // an existing keyring file (wins over --encrypt)
	KeyringFileCreated                      // --encrypt, written to a new keyring file
)

func (s KeyringSource) String() string {
	switch s {
	case KeyringOff:
		return "off"
	case KeyringFromEncrypt:
		return "encrypt"
	case KeyringFromFile:
		return "keyring-file"
	case KeyringFileCreated:
		return "encrypt, written to keyring-file"
	}
	return fmt.Sprintf("source(%d)", int(s))
}

// LoadedKeyring is the keyring a gateway starts with.
type LoadedKeyring struct {
	Keys   [][]byte // primary first; empty when gossip is not encrypted
	Source KeyringSource
	// EncryptIgnored: --encrypt was given but an existing keyring file won,
	// and the file does not hold that key (the operator should know).
	EncryptIgnored bool
}

// LoadKeyring resolves --encrypt and --keyring-file as Serf's and Consul's
// agents do: an existing keyring file wins (it holds the rotations made
// since; a stale --encrypt is ignored); a missing one is created from
// --encrypt, and Serf keeps it current from then on; a keyring file with
// neither an existing file nor --encrypt is an error. Errors name the
// flag and never repeat a key.
func LoadKeyring(encrypt, keyringFile string) (LoadedKeyring, error) {
	var key []byte
	if strings.TrimSpace(encrypt) != "" {
		var err error
		if key, err = ParseKey(encrypt); err != nil {
			return LoadedKeyring{}, fmt.Errorf("encrypt: %w", err)
		}
	}
	if keyringFile == "" {
		if key == nil {
			return LoadedKeyring{Source: KeyringOff}, nil
		}
		return LoadedKeyring{Keys: [][]byte{key}, Source: KeyringFromEncrypt}, nil
	}
	_, err := os.Stat(keyringFile)
	switch {
	case err == nil:
		keys, err := ReadKeyringFile(keyringFile)
		if err != nil {
			return LoadedKeyring{}, fmt.Errorf("keyring-file: %w", err)
		}
		ignored := key != nil && !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, key) })
		return LoadedKeyring{Keys: keys, Source: KeyringFromFile, EncryptIgnored: ignored}, nil
	case errors.Is(err, os.ErrNotExist):
		if key == nil {
			return LoadedKeyring{}, fmt.Errorf("keyring-file: %s does not exist; give --encrypt KEY once to create it", keyringFile)
		}
		if err := WriteKeyringFile(keyringFile, [][]byte{key}); err != nil {
			return LoadedKeyring{}, fmt.Errorf("keyring-file: %w", err)
		}
		return LoadedKeyring{Keys: [][]byte{key}, Source: KeyringFileCreated}, nil
	default:
		return LoadedKeyring{}, fmt.Errorf("keyring-file: %w", err)
	}
}

// KeyringResponse is the pool's answer to a keyring operation (Serf's
// serf.KeyResponse): Keys and PrimaryKeys count, per base64 key, the
// gateways that hold it; Messages holds what gateways said, by node name.
type KeyringResponse struct {
	Keys        map[string]int
	PrimaryKeys map[string]int
	NumNodes    int // members memberlist knows of (alive or suspect)
	NumResp     int // gateways that answered
	NumErr      int // gateways that answered with an error
	Messages    map[string]string
}

// Keyring operation failures, for errors.Is on a KeyManager's errors.
var (
	// ErrEncryptionOff: the pool has no keyring (no --encrypt).
	ErrEncryptionOff = errors.New("gossip encryption is off")
	// ErrKeyNotInstalled: use of a key some gateway does not have.
	ErrKeyNotInstalled = errors.New("key is not installed")
	// ErrPrimaryKey: removal of the primary key.
	ErrPrimaryKey = errors.New("the primary key cannot be removed; use another key first")
	// ErrKeyringFailed: some gateway reported another failure.
	ErrKeyringFailed = errors.New("gateways reported failure")
	// ErrKeyringIncomplete: some gateway did not answer in time.
	ErrKeyringIncomplete = errors.New("not every gateway answered")
)

// KeyManager changes the gossip keyring across the whole pool with Serf's
// key manager (a Serf query each gateway answers). On error the response
// holds what the gateways said. Implemented by SerfMembership.
type KeyManager interface {
	// EncryptionEnabled reports whether this gateway has a keyring.
	EncryptionEnabled() bool
	ListKeys() (KeyringResponse, error)
	InstallKey(key string) (KeyringResponse, error)
	UseKey(key string) (KeyringResponse, error)
	RemoveKey(key string) (KeyringResponse, error)
}

var _ KeyManager = (*SerfMembership)(nil)

// EncryptionEnabled implements KeyManager.
func (m *SerfMembership) EncryptionEnabled() bool { return m.serf.EncryptionEnabled() }

// ListKeys implements KeyManager.
func (m *SerfMembership) ListKeys() (KeyringResponse, error) {
	return m.keyOp("list", "")
}

// InstallKey implements KeyManager: every gateway adds the key (it can
// decrypt with it; the primary key still encrypts).
func (m *SerfMembership) InstallKey(key string) (KeyringResponse, error) {
	return m.keyOp("install", key)
}

// UseKey implements KeyManager: every gateway makes the key primary.
func (m *SerfMembership) UseKey(key string) (KeyringResponse, error) {
	return m.keyOp("use", key)
}

// RemoveKey implements KeyManager.
func (m *SerfMembership) RemoveKey(key string) (KeyringResponse, error) {
	return m.keyOp("remove", key)
}

func (m *SerfMembership) keyOp(op, key string) (KeyringResponse, error) {
	if !m.serf.EncryptionEnabled() {
		return KeyringResponse{}, ErrEncryptionOff
	}
	if op != "list" {
		k, err := ParseKey(key)
		if err != nil {
			return KeyringResponse{}, err
		}
		key = EncodeKey(k)
	}
	km := m.serf.KeyManager()
	var err error
	var sr *serf.KeyResponse
	switch op {
	case "list":
		sr, err = km.ListKeys()
	case "install":
		sr, err = km.InstallKey(key)
	case "use":
		sr, err = km.UseKey(key)
	case "remove":
		sr, err = km.RemoveKey(key)
	}
	resp := KeyringResponse{Keys: map[string]int{}, PrimaryKeys: map[string]int{}, Messages: map[string]string{}}
	if sr != nil {
		for k, n := range sr.Keys {
			if k != "" {
				resp.Keys[k] = n
			}
		}
		for k, n := range sr.PrimaryKeys {
			if k != "" {
				resp.PrimaryKeys[k] = n
			}
		}
		maps.Copy(resp.Messages, sr.Messages)
		resp.NumNodes, resp.NumResp, resp.NumErr = sr.NumNodes, sr.NumResp, sr.NumErr
	}
	if err == nil {
		level := slog.LevelInfo
		if op == "list" {
			level = slog.LevelDebug
		}
		m.log.Log(context.Background(), level, "gossip keyring "+op, "component", "serf", "gateways", resp.NumResp)
		return resp, nil
	}
	return resp, classifyKeyErr(op, resp, err)
}

// classifyKeyErr turns Serf's error and per-gateway messages into one of
// the Err* values, with the gateways' messages in the text.
func classifyKeyErr(op string, resp KeyringResponse, err error) error {
	var kind error
	switch {
	case resp.NumErr > 0:
		notInstalled, primary := 0, 0
		for _, msg := range resp.Messages {
			l := strings.ToLower(msg)
			switch {
			case strings.Contains(l, "not in the keyring"):
				notInstalled++
			case strings.Contains(l, "primary key is not allowed"):
				primary++
			}
		}
		switch {
		case notInstalled > 0 && notInstalled == resp.NumErr:
			kind = ErrKeyNotInstalled
		case primary > 0 && primary == resp.NumErr:
			kind = ErrPrimaryKey
		default:
			kind = ErrKeyringFailed
		}
	case resp.NumNodes > 0 && resp.NumResp < resp.NumNodes:
		kind = ErrKeyringIncomplete
	default:
		return fmt.Errorf("keyring %s: %w: %v", op, ErrKeyringFailed, err)
	}
	names := make([]string, 0, len(resp.Messages))
	for n := range resp.Messages {
		names = append(names, n)
	}
	slices.Sort(names)
	var detail []string
	for _, n := range names {
		detail = append(detail, n+": "+resp.Messages[n])
	}
	msg := fmt.Sprintf("keyring %s: %v (%d of %d gateways answered, %d with an error)", op, kind, resp.NumResp, resp.NumNodes, resp.NumErr)
	if len(detail) > 0 {
		msg += ": " + strings.Join(detail, "; ")
	}
	return &keyringError{msg: msg, kind: kind}
}

type keyringError struct {
	msg  string
	kind error
}

func (e *keyringError) Error() string { return e.msg }
func (e *keyringError) Unwrap() error { return e.kind }
