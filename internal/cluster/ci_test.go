package cluster

import (
	"os"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/pgtest"
)

// TestPostgreSQLIsThereUnderCI: the PGBus and PGLeader tests skip where no PostgreSQL server is
// installed; under CI they must run, so a missing server fails here rather than CI passing by
// skipping them.
func TestPostgreSQLIsThereUnderCI(t *testing.T) {
	if os.Getenv("CI") == "" {
		t.Skip("not under CI: the PostgreSQL tests may skip here")
	}
	if err := pgtest.Available(); err != nil {
		t.Fatalf("PostgreSQL is needed under CI: %v", err)
	}
	pgtest.Require(t)
}
