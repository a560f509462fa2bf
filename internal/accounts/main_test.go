package accounts

import (
	"testing"

	"github.com/tensfer-golive/dashboard/internal/dbtest"
)

// The package's tests run on SQLite, then again on PostgreSQL.
func TestMain(m *testing.M) { dbtest.Main(m) }
