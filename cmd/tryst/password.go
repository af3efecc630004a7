package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"
)

// readPassword takes the password from --password-file, TRYST_PASSWORD or
// a no-echo prompt on the terminal, in that order. Never from argv.
func readPassword(file string, std stdio) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usageError{fmt.Errorf("--password-file: %w", err)}
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return "", usageError{errors.New("--password-file: the file is empty")}
		}
		return pw, nil
	}
	if pw, ok := std.getenv("TRYST_PASSWORD"); ok && pw != "" {
		return pw, nil
	}
	f, ok := std.in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageError{errors.New("no password: set TRYST_PASSWORD or --password-file (stdin is not a terminal to prompt on)")}
	}
	tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0)
	if err == nil {
		defer tty.Close()
		fmt.Fprint(tty, "Password: ")
	}
	b, err := term.ReadPassword(int(f.Fd()))
	if tty != nil {
		fmt.Fprintln(tty)
	}
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if len(b) == 0 {
		return "", usageError{errors.New("empty password")}
	}
	return string(b), nil
}
