package region

import (
	"encoding/json"
	"strings"
	"testing"
)

// dupKeyCases are bodies for the fast duplicate-key scan: each says
// whether the fast scan may accept it (fast) and whether the full check
// rejects it (bad).
var dupKeyCases = []struct {
	body      string
	fast, bad bool
}{
	{`{"address":"10.0.0.1","port":8080,"zone":"a","tags":["v1"]}`, true, false},
	{` {"a":1, "b":[1,2,{"c":null}], "d":{"e":true,"f":false}} ` + "\n", true, false},
	{`{"meta":{"K":"1","k":"2"}}`, true, false}, // a map may hold keys that differ in case
	{`{"port":80,"port":81}`, false, true},
	{`{"port":80,"PORT":81}`, false, true},
	{`{"check":{"ttl":"1s","TTL":"2s"}}`, false, true},
	{`{"":{"a":1,"A":2}}`, false, true}, // the slow check names "" as the top level
	{`{"meta":{"a":1,"a":2}}`, false, true},
	{`{"x":[{"a":1,"a":2}]}`, false, true},
	{`{"a\u0062":1,"ab":2}`, false, true}, // escaped key: the slow check decodes it
	{`{"\u00e9":1}`, false, false},
	{`{"é":1,"É":2}`, false, true},                      // non-ASCII in a struct-like object: strings.ToLower folds it
	{`{"meta":{"é":1,"É":2}}`, true, false},             // but not in a map
	{"{\"meta\":{\"\xff\":1,\"\xfe\":2}}", false, true}, // both decode to U+FFFD
	{`{"a":1}{"a":2}`, false, false},                    // trailing data: the decoder's business
	{`{"a":1,}`, false, false},                          // syntax error: left to the decoder
	{`{"a":01}`, false, false},                          // bad number
	{`{"a":"x` + "\n" + `"}`, false, false},             // control character in a string
	{`{"a":-1.5e+3,"b":0,"c":[],"d":{}}`, true, false},  // numbers, empty containers
	{`[1,2]`, true, false},
	{strings.Repeat("[", 33) + strings.Repeat("]", 33), true, false},
	{strings.Repeat("[", 34) + strings.Repeat("]", 34), false, true}, // deeper than maxJSONDepth
}

func TestNoDuplicateKeysAgreesWithSlowCheck(t *testing.T) {
	for _, tc := range dupKeyCases {
		fast := noDuplicateKeys([]byte(tc.body))
		slow := checkDuplicateKeysSlow([]byte(tc.body))
		if fast != tc.fast {
			t.Errorf("noDuplicateKeys(%q) = %v, want %v", tc.body, fast, tc.fast)
		}
		if (slow != nil) != tc.bad {
			t.Errorf("checkDuplicateKeysSlow(%q) = %v, want an error: %v", tc.body, slow, tc.bad)
		}
		if fast && slow != nil {
			t.Errorf("the fast scan accepts %q, which the slow check rejects: %v", tc.body, slow)
		}
		if fast && !json.Valid([]byte(tc.body)) {
			t.Errorf("the fast scan accepts %q, which is not valid JSON", tc.body)
		}
	}
}

// FuzzNoDuplicateKeys: the fast scan never accepts a body that the slow
// check rejects, and accepts only valid JSON.
func FuzzNoDuplicateKeys(f *testing.F) {
	for _, tc := range dupKeyCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !noDuplicateKeys(body) {
			return
		}
		if err := checkDuplicateKeysSlow(body); err != nil {
			t.Fatalf("the fast scan accepts %q, which the slow check rejects: %v", body, err)
		}
		if !json.Valid(body) {
			t.Fatalf("the fast scan accepts %q, which is not valid JSON", body)
		}
	})
}
