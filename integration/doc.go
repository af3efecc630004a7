// Package integration holds the live tests: they build the tryst binary and
// run it as users and operators do, against the real programs it meets in
// production (Prometheus, promtool, a private network namespace). They run
// with the rest of the suite under `make test`; tests of a single package,
// in-process and on loopback, stay beside that package.
//
// The package has no code of its own, only this comment and its tests.
package integration
