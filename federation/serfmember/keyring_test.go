package serfmember

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridian-sd/meridian/federation"
)

func newKey(t *testing.T, n int) []byte {
	t.Helper()
	k := make([]byte, n)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKey(t *testing.T) {
	k16, k24, k32 := EncodeKey(bytes.Repeat([]byte{1}, 16)), EncodeKey(bytes.Repeat([]byte{2}, 24)), EncodeKey(bytes.Repeat([]byte{3}, 32))
	for _, tc := range []struct {
		in      string
		wantLen int
		wantErr string
	}{
		{k16, 16, ""},
		{k24, 24, ""},
		{"  " + k32 + "\n", 32, ""},
		{"", 0, "empty key"},
		{"not base64!!", 0, "not valid standard base64"},
		{EncodeKey(bytes.Repeat([]byte{4}, 20)), 0, "decodes to 20 bytes; want 16, 24 or 32"},
		{EncodeKey(bytes.Repeat([]byte{5}, 33)), 0, "decodes to 33 bytes"},
		{strings.TrimRight(k32, "="), 0, "not valid standard base64"}, // raw (unpadded) base64
	} {
		got, err := ParseKey(tc.in)
		switch {
		case tc.wantErr == "" && (err != nil || len(got) != tc.wantLen):
			t.Errorf("ParseKey(%q) = %d bytes, %v; want %d bytes", tc.in, len(got), err, tc.wantLen)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("ParseKey(%q) error = %v; want it to contain %q", tc.in, err, tc.wantErr)
		case err != nil && len(tc.in) > 4 && strings.Contains(err.Error(), strings.TrimSpace(tc.in)):
			t.Errorf("ParseKey(%q) error %q repeats the key", tc.in, err)
		}
	}
}

func TestKeyringFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := newKey(t, 32), newKey(t, 16)
	path := filepath.Join(dir, "sub", "keyring")
	if err := WriteKeyringFile(path, [][]byte{k1, k2}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("keyring file mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := ReadKeyringFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !bytes.Equal(got[0], k1) || !bytes.Equal(got[1], k2) {
		t.Errorf("ReadKeyringFile = %d keys, want k1, k2 in order", len(got))
	}
	// Serf's own format (what serf writes on key changes) reads the same.
	serfStyle := fmt.Sprintf("[\n  %q,\n  %q\n]", EncodeKey(k2), EncodeKey(k1))
	os.WriteFile(path, []byte(serfStyle), 0o600)
	got, err = ReadKeyringFile(path)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], k2) {
		t.Errorf("ReadKeyringFile(serf's format) = %d keys, %v; want k2 first", len(got), err)
	}

	for _, tc := range []struct{ name, content, want string }{
		{"empty", "[]", "contains no keys"},
		{"object", `{"keys": []}`, "want a JSON array of base64 keys"},
		{"garbage", "nope", "want a JSON array"},
		{"bad key", `["` + EncodeKey(k1) + `", "c2hvcnQ="]`, "key 1: decodes to 5 bytes"},
	} {
		p := filepath.Join(dir, tc.name)
		os.WriteFile(p, []byte(tc.content), 0o600)
		_, err := ReadKeyringFile(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: ReadKeyringFile error = %v; want %q and the path", tc.name, err, tc.want)
		}
	}
	if _, err := ReadKeyringFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

func TestLoadKeyring(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := newKey(t, 32), newKey(t, 32)
	enc1 := EncodeKey(k1)

	// Neither: off.
	lk, err := LoadKeyring("", "")
	if err != nil || lk.Source != KeyringOff || len(lk.Keys) != 0 {
		t.Errorf("LoadKeyring(none) = %+v, %v; want off", lk, err)
	}
	// --encrypt only.
	lk, err = LoadKeyring(enc1, "")
	if err != nil || lk.Source != KeyringFromEncrypt || len(lk.Keys) != 1 || !bytes.Equal(lk.Keys[0], k1) {
		t.Errorf("LoadKeyring(encrypt) = %v, %v; want k1 from encrypt", lk.Source, err)
	}
	// A bad --encrypt names the flag.
	if _, err := LoadKeyring("abc", ""); err == nil || !strings.HasPrefix(err.Error(), "encrypt: ") {
		t.Errorf("LoadKeyring(bad) error = %v, want it to name encrypt", err)
	}
	// --keyring-file alone, missing: error naming the flag.
	path := filepath.Join(dir, "keyring")
	if _, err := LoadKeyring("", path); err == nil || !strings.Contains(err.Error(), "keyring-file: ") || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("LoadKeyring(missing file) error = %v", err)
	}
	// Missing file + --encrypt: the file is created with the key.
	lk, err = LoadKeyring(enc1, path)
	if err != nil || lk.Source != KeyringFileCreated {
		t.Fatalf("LoadKeyring(encrypt, new file) = %v, %v", lk.Source, err)
	}
	if got, err := ReadKeyringFile(path); err != nil || len(got) != 1 || !bytes.Equal(got[0], k1) {
		t.Errorf("created keyring file holds %d keys, %v; want k1", len(got), err)
	}
	// An existing file wins over --encrypt; a stale --encrypt is flagged.
	WriteKeyringFile(path, [][]byte{k2, k1})
	lk, err = LoadKeyring(enc1, path)
	if err != nil || lk.Source != KeyringFromFile || len(lk.Keys) != 2 || !bytes.Equal(lk.Keys[0], k2) || lk.EncryptIgnored {
		t.Errorf("LoadKeyring(encrypt k1, file [k2 k1]) = %v %d keys ignored=%v, %v; want the file's, k2 primary, not ignored", lk.Source, len(lk.Keys), lk.EncryptIgnored, err)
	}
	WriteKeyringFile(path, [][]byte{k2})
	lk, err = LoadKeyring(enc1, path)
	if err != nil || len(lk.Keys) != 1 || !bytes.Equal(lk.Keys[0], k2) || !lk.EncryptIgnored {
		t.Errorf("LoadKeyring(encrypt k1, file [k2]) = %d keys ignored=%v, %v; want k2, encrypt ignored", len(lk.Keys), lk.EncryptIgnored, err)
	}
	// A corrupt file is an error, not a silent fallback to --encrypt.
	os.WriteFile(path, []byte("[]"), 0o600)
	if _, err := LoadKeyring(enc1, path); err == nil || !strings.HasPrefix(err.Error(), "keyring-file: ") {
		t.Errorf("LoadKeyring(empty file) error = %v", err)
	}
}

func TestSerfConfigValidateKeys(t *testing.T) {
	c := SerfConfig{Region: "us-east", Keys: [][]byte{make([]byte, 10)}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "Keys[0]: 10 bytes") {
		t.Errorf("Validate(10-byte key) = %v", err)
	}
	c = SerfConfig{Region: "us-east", KeyringFile: "/tmp/x"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "KeyringFile needs Keys") {
		t.Errorf("Validate(file without keys) = %v", err)
	}
}

// keyedNode starts a real Serf node on 127.0.0.1 with the given keys.
func keyedNode(t *testing.T, log *slog.Logger, name string, keys [][]byte, file string, join ...string) *testNode {
	return startNode(t, SerfConfig{NodeName: name, Region: name, HTTPAddr: "127.0.0.1:1",
		BindAddr: "127.0.0.1:0", Profile: federation.ProfileLocal, Join: join, Logger: log, Keys: keys, KeyringFile: file})
}

func names(m federation.Membership) []string {
	var out []string
	for _, mem := range m.Members() {
		if mem.Status == federation.StatusAlive {
			out = append(out, mem.Name)
		}
	}
	return out
}

// TestSerfEncryptedPool runs real Serf over UDP/TCP on 127.0.0.1: two
// gateways with the key form a pool; one without a key and one with
// another key cannot join and never show up (nor see the pool), even
// while they keep trying; the key
// is rotated across the pool (install, use, remove) with the keyring files
// following, after which only the new key gets in.
func TestSerfEncryptedPool(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets; skipped with -short")
	}
	log, _ := testLogger(t, slog.LevelInfo)
	dir := t.TempDir()
	k1, k2, k3 := newKey(t, 32), newKey(t, 16), newKey(t, 32)
	fa, fb := filepath.Join(dir, "a.keyring"), filepath.Join(dir, "b.keyring")
	for _, f := range []string{fa, fb} {
		WriteKeyringFile(f, [][]byte{k1})
	}
	a := keyedNode(t, log, "gw-a", [][]byte{k1}, fa)
	b := keyedNode(t, log, "gw-b", [][]byte{k1}, fb, a.BindAddr())
	waitFor(t, 5*time.Second, "a and b together", allHave([]*testNode{a, b},
		map[string]federation.MemberStatus{"gw-a": federation.StatusAlive, "gw-b": federation.StatusAlive}))
	if !a.EncryptionEnabled() {
		t.Fatal("a.EncryptionEnabled() = false")
	}

	// Rogues: no key, and another key. Their join fails outright.
	var rogues []*testNode
	for _, rogue := range []struct {
		name string
		keys [][]byte
	}{{"rogue-plain", nil}, {"rogue-k3", [][]byte{k3}}} {
		r := keyedNode(t, log, rogue.name, rogue.keys, "")
		n, err := r.Serf().Join([]string{a.BindAddr(), b.BindAddr()}, true)
		if n != 0 || err == nil {
			t.Errorf("%s: Join = %d, %v; want 0 and an error", rogue.name, n, err)
		}
		t.Logf("%s: join refused: %s", rogue.name, oneLine(err))
		// and it keeps trying in the background, with no more luck.
		go r.joinLoop([]string{a.BindAddr()})
		rogues = append(rogues, r)
	}
	time.Sleep(3 * time.Second) // many gossip rounds, a push/pull or two
	for _, n := range []*testNode{a, b} {
		if got := names(n); !slices.Equal(got, []string{"gw-a", "gw-b"}) {
			t.Errorf("%s sees %v, want only gw-a, gw-b", n.LocalName(), got)
		}
	}
	for _, r := range rogues {
		if got := names(r); !slices.Equal(got, []string{r.LocalName()}) {
			t.Errorf("%s sees %v, want only itself", r.LocalName(), got)
		}
	}

	// Rotation, from a: install k2, use it, remove k1.
	list, err := a.ListKeys()
	if err != nil || list.NumNodes != 2 || list.Keys[EncodeKey(k1)] != 2 || list.PrimaryKeys[EncodeKey(k1)] != 2 {
		t.Fatalf("ListKeys = %+v, %v; want k1 on 2 of 2", list, err)
	}
	if _, err := a.UseKey(EncodeKey(k2)); !errors.Is(err, ErrKeyNotInstalled) {
		t.Errorf("UseKey(not installed) = %v, want ErrKeyNotInstalled", err)
	}
	if _, err := a.InstallKey(EncodeKey(k2)); err != nil {
		t.Fatalf("InstallKey: %v", err)
	}
	if _, err := a.UseKey(EncodeKey(k2)); err != nil {
		t.Fatalf("UseKey: %v", err)
	}
	if _, err := b.RemoveKey(EncodeKey(k2)); !errors.Is(err, ErrPrimaryKey) {
		t.Errorf("RemoveKey(primary) = %v, want ErrPrimaryKey", err)
	}
	if _, err := b.RemoveKey(EncodeKey(k1)); err != nil {
		t.Fatalf("RemoveKey: %v", err)
	}
	list, err = b.ListKeys()
	if err != nil || len(list.Keys) != 1 || list.Keys[EncodeKey(k2)] != 2 || list.PrimaryKeys[EncodeKey(k2)] != 2 {
		t.Errorf("after rotation ListKeys = %+v, %v; want only k2, on 2 of 2", list, err)
	}
	for _, f := range []string{fa, fb} {
		got, err := ReadKeyringFile(f)
		if err != nil || len(got) != 1 || !bytes.Equal(got[0], k2) {
			t.Errorf("%s after rotation: %d keys, %v; want [k2]", f, len(got), err)
		}
	}
	// The pool stayed together, and now k2 gets in while k1 does not.
	newcomer := keyedNode(t, log, "gw-c", [][]byte{k2}, "")
	if n, err := newcomer.Serf().Join([]string{a.BindAddr()}, true); n != 1 || err != nil {
		t.Fatalf("k2 node join after rotation = %d, %v", n, err)
	}
	old := keyedNode(t, log, "gw-old", [][]byte{k1}, "")
	if n, err := old.Serf().Join([]string{a.BindAddr()}, true); n != 0 || err == nil {
		t.Errorf("k1 node join after rotation = %d, %v; want refused", n, err)
	}
	all := map[string]federation.MemberStatus{"gw-a": federation.StatusAlive, "gw-b": federation.StatusAlive, "gw-c": federation.StatusAlive}
	waitFor(t, 5*time.Second, "a, b and c together on k2", allHave([]*testNode{a, b, newcomer}, all))
	for _, n := range []*testNode{a, b, newcomer} {
		if got := names(n); !slices.Equal(got, []string{"gw-a", "gw-b", "gw-c"}) {
			t.Errorf("%s sees %v, want gw-a, gw-b, gw-c", n.LocalName(), got)
		}
	}
}

// TestKeyOpsWithoutEncryption: an unencrypted pool says so.
func TestKeyOpsWithoutEncryption(t *testing.T) {
	if testing.Short() {
		t.Skip("real sockets; skipped with -short")
	}
	log, _ := testLogger(t, slog.LevelInfo)
	a := keyedNode(t, log, "gw-a", nil, "")
	if a.EncryptionEnabled() {
		t.Error("EncryptionEnabled() = true without keys")
	}
	if _, err := a.ListKeys(); !errors.Is(err, ErrEncryptionOff) {
		t.Errorf("ListKeys = %v, want ErrEncryptionOff", err)
	}
}

// FuzzParseKey: a key from outside (flag, environment, keyring file, the
// keyring API) either parses to 16, 24 or 32 bytes that round-trip, or
// fails with a message that does not repeat it.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"", "abc", EncodeKey(make([]byte, 16)), EncodeKey(make([]byte, 32)) + "\n", "%%%%", EncodeKey(make([]byte, 31))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			if len(s) >= 16 && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q repeats the input", err)
			}
			return
		}
		if n := len(k); n != 16 && n != 24 && n != 32 {
			t.Fatalf("ParseKey(%q) = %d bytes", s, n)
		}
		if k2, err := ParseKey(EncodeKey(k)); err != nil || !bytes.Equal(k, k2) {
			t.Fatalf("round trip of %q: %v", s, err)
		}
	})
}
