package contract_test

import (
	"os/exec"
	"strings"
	"testing"
)

// goList runs go list -deps with args and returns the words it printed.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	args = append([]string{"list", "-deps"}, args...)
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

func TestTheContractDependsOnlyOnTheStandardLibrary(t *testing.T) {
	for _, d := range goList(t, "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/twofold-dev/twofold/contract/...") {
		if !strings.HasPrefix(d, "github.com/twofold-dev/twofold/contract") {
			t.Errorf("the contract depends on %s", d)
		}
	}
}

func TestTheSidecarAndTheControllersReachTheCoreOnlyThroughTheContractAndTheAdminClient(t *testing.T) {
	// -test: the tests of the sidecar and the controllers stay off the core's insides too.
	deps := goList(t, "-test", "-f", "{{.ImportPath}}",
		"github.com/twofold-dev/twofold/sidecar/...", "github.com/twofold-dev/twofold/cmd/sidecar",
		"github.com/twofold-dev/twofold/controllers/...", "github.com/twofold-dev/twofold/cmd/manager")
	if len(deps) < 10 {
		t.Fatalf("go list returned too little to judge: %q", deps)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/twofold-dev/twofold/core/") && d != "github.com/twofold-dev/twofold/core/adminclient" {
			t.Errorf("the sidecar or the controllers depend on %s", d)
		}
	}
}
