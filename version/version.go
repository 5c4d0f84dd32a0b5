// Package version is the version of Twofold's binaries. Release builds set it with
// -ldflags "-X github.com/twofold-dev/twofold/version.Version=<tag>", as make images does; the
// default is the chart's appVersion, so a binary built with a plain go build names the images
// the chart deploys. It imports nothing, so the sidecar may use it.
package version

// Version is this build's version, and the tag of the images the binaries name by default.
var Version = "0.1.0"
