// Package web serves Tryst's browser client: plain HTML, CSS and JavaScript
// embedded in the binary, using Web Crypto for the same end-to-end
// encryption as the Go client. No third-party requests, no build step.
package web
