// Command kubectl-twofold is the kubectl plugin that administers Twofold users: copy it onto
// the PATH (or install it with krew, plugins/krew/twofold.yaml) and run `kubectl twofold`.
// See docs/operations.md.
package main

import (
	"os"

	"github.com/twofold-dev/twofold/kubectl"
)

func main() {
	os.Exit(kubectl.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
