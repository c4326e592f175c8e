package httpsync

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/meridian-sd/meridian/federation"
	"github.com/meridian-sd/meridian/region"
)

// decodeAnswer reads a sync answer (a DeltaResponse or a FullResponse)
// from r: all but the instances into a CatalogAnswer, the instances into
// a catalog builder (nil when the answer has none), one by one as they are
// decoded: neither the body nor a []Instance of the
// whole region is ever held (at 100,000 instances they are ~30 MB and
// ~40 MB next to the catalog being built).
func decodeAnswer(r io.Reader) (federation.CatalogAnswer, *region.CatalogBuilder, error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return federation.CatalogAnswer{}, nil, err
	}
	var a federation.CatalogAnswer // all but the instances
	var b *region.CatalogBuilder
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return federation.CatalogAnswer{}, nil, err
		}
		key, _ := tok.(string)
		switch canonicalField(key) {
		case "region":
			err = dec.Decode(&a.Region)
		case "version":
			err = dec.Decode(&a.Version)
		case "full":
			err = dec.Decode(&a.Full)
		case "changes":
			err = dec.Decode(&a.Changes)
		case "epoch":
			err = dec.Decode(&a.Epoch)
		case "restored_from":
			err = dec.Decode(&a.RestoredFrom)
		case "instances":
			b = region.NewCatalogBuilder(0)
			err = decodeInstances(dec, b)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return federation.CatalogAnswer{}, nil, fmt.Errorf("field %q: %w", key, err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return federation.CatalogAnswer{}, nil, err
	}
	return a, b, nil
}

// decodeInstances reads a JSON array (or null) of instances into b.
func decodeInstances(dec *json.Decoder, b *region.CatalogBuilder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil // null: no instances
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("want an array, got %v", tok)
	}
	for dec.More() {
		var in region.Instance
		if err := dec.Decode(&in); err != nil {
			return fmt.Errorf("instance %d: %w", b.Len(), err)
		}
		b.Add(in)
	}
	return expectDelim(dec, ']')
}

// canonicalField is the field of an answer key names, matched without
// regard to case as json.Unmarshal does; "" when none.
func canonicalField(key string) string {
	for _, f := range []string{"region", "version", "full", "changes", "instances", "epoch", "restored_from"} {
		if strings.EqualFold(key, f) {
			return f
		}
	}
	return ""
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("want %q, got %v", want, tok)
	}
	return nil
}
