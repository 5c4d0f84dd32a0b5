// Command printversion prints the version it was built with; the image builder's tests build
// it to see that binaries are stamped with the image tag.
package main

import (
	"fmt"

	"github.com/twofold-dev/twofold/version"
)

func main() { fmt.Print(version.Version) }
