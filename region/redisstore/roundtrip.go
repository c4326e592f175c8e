package redisstore

import (
	"time"
	"unicode/utf8"

	"github.com/meridian-sd/meridian/region"
)

// decodesAsItself reports whether decoding the JSON of in (with
// json.Marshal) gives back exactly in, after normalizing in in place the
// way the round trip would: its times lose their monotonic clock reading
// (and those at offset zero become UTC), and empty tag lists and meta maps
// become nil. It is false, and the
// caller must decode the stored bytes, when the round trip would change
// more: a time in a location other than UTC or Local (decoding gives a
// fabricated zone), or a string that is not valid UTF-8 (encoding replaces
// bad bytes).
func decodesAsItself(in *region.Instance) bool {
	reg, ok1 := jsonTime(in.RegisteredAt)
	upd, ok2 := jsonTime(in.UpdatedAt)
	if !ok1 || !ok2 {
		return false
	}
	valid := utf8.ValidString(in.ID) && utf8.ValidString(in.Service) && utf8.ValidString(in.Address) &&
		utf8.ValidString(in.Zone) && utf8.ValidString(string(in.Status)) && utf8.ValidString(in.Output) &&
		utf8.ValidString(in.RegisteredBy)
	for _, t := range in.Tags {
		valid = valid && utf8.ValidString(t)
	}
	for k, v := range in.Meta {
		valid = valid && utf8.ValidString(k) && utf8.ValidString(v)
	}
	if c := in.Check; c != nil {
		valid = valid && utf8.ValidString(c.HTTP) && utf8.ValidString(c.TCP)
	}
	if !valid {
		return false
	}
	in.RegisteredAt, in.UpdatedAt = reg, upd
	if len(in.Tags) == 0 {
		in.Tags = nil
	}
	if len(in.Meta) == 0 {
		in.Meta = nil
	}
	if in.Check != nil {
		c := *in.Check // the decoded instance has its own
		in.Check = &c
	}
	return true
}

// jsonTime returns t as decoding its RFC 3339 text gives it, and whether
// it can tell without decoding: without its monotonic reading, in UTC when
// its offset is zero (the text ends in "Z"), and otherwise only when it is
// in Local (the parser maps an offset back to Local when Local uses that
// offset at that instant, which is how t was made); any other location
// comes back as a fabricated zone.
func jsonTime(t time.Time) (time.Time, bool) {
	t = t.Round(0)
	if _, off := t.Zone(); off == 0 {
		return t.UTC(), true
	}
	return t, t.Location() == time.Local
}
