package main

import (
	"context"
	"errors"
	"io"
)

func runBenchHub(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("bench hub: not built yet")
}
