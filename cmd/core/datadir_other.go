//go:build !unix

package main

import (
	"fmt"
	"io"
)

const prepareDataCommand = "prepare-data"

// prepareDataMain refuses: file ownership as the prepare-data mode sets it is a Unix notion.
func prepareDataMain(_ []string, out io.Writer) int {
	fmt.Fprintf(out, "twofold-core %s: runs on Linux and other Unix systems only\n", prepareDataCommand)
	return 1
}

// explainOpenError returns err as it is.
func explainOpenError(_ string, err error) error { return err }
