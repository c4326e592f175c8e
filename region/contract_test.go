package region_test

import (
	"testing"

	"github.com/meridian-sd/meridian/region"
	"github.com/meridian-sd/meridian/region/storetest"
)

func TestMemStoreContract(t *testing.T) {
	storetest.Contract(t, func(t *testing.T, logMax int) region.Store { return region.NewMemStore(logMax) })
}

func TestMemStoreLossContract(t *testing.T) {
	s := region.NewMemStore(0)
	storetest.LossContract(t, s, s.Wipe)
}
