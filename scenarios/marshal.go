package scenarios

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// keepZero lists the keys Marshal keeps even when their value is empty,
// because leaving them out changes the meaning (at: 0s is required, min: 0 is a bound, zone_preference: false is not the default).
var keepZero = map[string]bool{
	"at": true, "kind": true, "metric": true, "duration": true, "name": true,
	"min": true, "max": true, "zone_preference": true,
}

// Marshal writes sc as a scenario file that Parse reads back to the same
// scenario: empty fields are left out, so the file stays readable.
func Marshal(sc *Scenario) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(sc); err != nil {
		return nil, fmt.Errorf("encoding scenario %s: %w", sc.Name, err)
	}
	prune(&n)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("encoding scenario %s: %w", sc.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding scenario %s: %w", sc.Name, err)
	}
	return b.Bytes(), nil
}

func emptyNode(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return true
		case "!!str":
			return n.Value == "" || n.Value == "0s"
		case "!!int", "!!float":
			return n.Value == "0"
		case "!!bool":
			return n.Value == "false"
		}
	case yaml.SequenceNode, yaml.MappingNode:
		return len(n.Content) == 0
	}
	return false
}

func prune(n *yaml.Node) {
	for _, c := range n.Content {
		prune(c)
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if emptyNode(v) && !keepZero[k.Value] {
			continue
		}
		kept = append(kept, k, v)
	}
	n.Content = kept
}
