package mfaengine

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The engine's operations return results and new tokens; the HTTP edge (core/mfaapi, the
// factors' endpoints, the hosted pages) writes them. So the engine imports no transport.
func TestTheEngineKnowsNoTransport(t *testing.T) {
	forbidden := []string{"net/http", "github.com/twofold-dev/twofold/core/httpkit", "github.com/twofold-dev/twofold/core/httpapi",
		"github.com/twofold-dev/twofold/core/mfaapi", "github.com/twofold-dev/twofold/core/hostedui"}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad {
					t.Errorf("%s imports %s: the engine must not know the transport", name, path)
				}
			}
		}
	}
}
