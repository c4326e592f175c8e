package region

import (
	"reflect"
	"testing"
)

var registrationBodies = []string{
	`{"address":"10.0.0.1","port":8080,"zone":"a","tags":["v1"]}`,
	` { "address" : "h" , "port" : -0 , "weight" : 0, "status":"critical", "tags" : [ ], "meta" : { } } `,
	`{"address":"é","port":1,"meta":{"a":"1","B":"2"},"tags":["x","y"]}`,
	`{}`,
	`{"port":80.0}`,
	`{"port":1e3}`,
	`{"port":"80"}`,
	`{"port":99999999999999999999}`,
	`{"address":null,"port":1}`,
	`{"Address":"h","port":1}`,
	`{"address":"a\"b","port":1}`,
	`{"address":"h","port":1,"check":{"ttl":"1s"}}`,
	`{"address":"h","port":1,"extra":1}`,
	`{"address":"h","port":1,"port":2}`,
	`{"address":"h","port":1,"tags":[null]}`,
	`{"address":"h","port":1,"meta":{"k":1}}`,
	"{\"address\":\"\xff\",\"port\":1}",
	`{"address":"h","port":1} x`,
	`[]`,
}

func checkFastRegistration(t *testing.T, body []byte) {
	t.Helper()
	var fast Registration
	if !decodeRegistrationFast(body, &fast) {
		return
	}
	var slow Registration
	if err := decodeStrict(body, &slow); err != nil {
		t.Fatalf("the fast decoder accepts %q, decodeStrict fails: %v", body, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("decoding %q:\nfast %#v\nslow %#v", body, fast, slow)
	}
}

func TestDecodeRegistrationFastMatchesDecodeStrict(t *testing.T) {
	accepted := 0
	for _, b := range registrationBodies {
		var r Registration
		if decodeRegistrationFast([]byte(b), &r) {
			accepted++
		}
		checkFastRegistration(t, []byte(b))
	}
	if accepted != 4 {
		t.Errorf("the fast decoder took %d of the bodies, want the first 4", accepted)
	}
}

func FuzzDecodeRegistrationFast(f *testing.F) {
	for _, b := range registrationBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkFastRegistration(t, body) })
}
