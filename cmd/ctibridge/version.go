package main

import "runtime/debug"

// Version is set at build time with -ldflags "-X main.Version=v1.2.3".
var Version = ""

// version returns Version, or the module version and VCS revision the Go
// toolchain recorded.
func version() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
