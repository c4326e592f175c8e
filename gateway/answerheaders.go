package gateway

import "sync/atomic"

// answerHeaders keeps the X-Meridian-Index and Content-Length values of
// recent answers, by version and length: the same answer asked again (the
// usual read: the same service, the catalog unchanged) takes its header
// values from here rather than format and allocate them. A small table
// indexed by a hash of the two numbers; a slot holds the last pair that
// landed in it.
var answerHeaders answerHeaderCache

type answerHeaderCache struct {
	slots [64]atomic.Pointer[answerHeaderValues]
}

// answerHeaderValues are the header values of one (version, length). The
// slices are shared between responses: a header's values are replaced
// (Header.Set) or appended to past their capacity (Header.Add), never
// written in place.
type answerHeaderValues struct {
	version uint64
	n       int
	index   []string
	length  []string
}

func (c *answerHeaderCache) slot(version uint64, length int) *atomic.Pointer[answerHeaderValues] {
	h := (version ^ uint64(length)*0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
	return &c.slots[h>>58]
}

// get returns the values of (version, length), or nil if they are not kept.
func (c *answerHeaderCache) get(version uint64, length int) *answerHeaderValues {
	if v := c.slot(version, length).Load(); v != nil && v.version == version && v.n == length {
		return v
	}
	return nil
}

// put keeps the values of (version, length).
func (c *answerHeaderCache) put(version uint64, length int, index, lengthValue []string) {
	c.slot(version, length).Store(&answerHeaderValues{version: version, n: length, index: index, length: lengthValue})
}
