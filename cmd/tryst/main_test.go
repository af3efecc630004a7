package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// asMainEnv makes the test binary run main instead of the tests: bench
// transfer starts `tryst serve` from os.Executable(), which under `go test`
// is this binary.
const asMainEnv = "TRYST_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
	}
	goleak.VerifyTestMain(m)
}
