package server_test

import (
	"os"
	"testing"

	"github.com/twofold-dev/twofold/test/pgtest"
)

// TWOFOLD_TEST_STORE=postgres runs the tests on PostgreSQL (coretest.Database).
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
