package tenant_test

import (
	"os"
	"testing"

	"github.com/twofold-dev/twofold/test/pgtest"
)

// TestMain stops the PostgreSQL cluster that TWOFOLD_TEST_STORE=postgres starts for these tests
// (coretest.Database).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
