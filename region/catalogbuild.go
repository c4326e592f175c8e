package region

import "strings"

// CatalogBuilder builds a catalog from a snapshot read one instance at a
// time (a full sync streamed from its decoder), so that the snapshot is
// never held whole next to the catalog built from it: Load needs the
// snapshot's []Instance, and the body it was decoded from, at once.
type CatalogBuilder struct {
	c *Catalog
}

// NewCatalogBuilder starts an empty catalog; sizeHint, when known, is
// the number of instances to come.
func NewCatalogBuilder(sizeHint int) *CatalogBuilder {
	c := NewCatalog()
	if sizeHint > 0 {
		c.services = make(map[string]*serviceSet, min(sizeHint, 1024))
	}
	return &CatalogBuilder{c: c}
}

// Add adds one instance of the snapshot (ModifyIndex as it comes). A
// second instance with the same service and id replaces the first.
func (b *CatalogBuilder) Add(in Instance) {
	// Its own copies of the strings unique to it: the decoded ones sit
	// among the decoder's garbage and would keep its pages resident.
	in.ID, in.Address = strings.Clone(in.ID), strings.Clone(in.Address)
	in.Output = strings.Clone(in.Output)
	b.c.put(&in, 0)
}

// Len returns the number of instances added so far.
func (b *CatalogBuilder) Len() int { return b.c.Len() }

// Catalog returns the catalog at version, as Load of the same snapshot
// would have built it. The builder must not be used after.
func (b *CatalogBuilder) Catalog(version uint64) *Catalog {
	c := b.c
	b.c = nil
	c.version = version
	for _, set := range c.services {
		set.changed = version
	}
	return c
}
