package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves the TLS certificate for HTTPS/WSS and TURNS and
// replaces it, without touching established connections, when the files
// change (checked every few seconds: ACME clients renew in place) or on
// SIGHUP. A broken new pair is logged and the current one kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	onLoad            func(notAfter time.Time) // reports the expiry (metrics)

	mu      sync.RWMutex
	cert    *tls.Certificate
	certMod time.Time
	keyMod  time.Time

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: slog.New(slog.DiscardHandler)}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

func modTime(path string) time.Time {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

func (r *certReloader) load() error {
	certMod, keyMod := modTime(r.certFile), modTime(r.keyFile)
	pair, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("parse certificate: %w", err)
	}
	pair.Leaf = leaf
	r.mu.Lock()
	r.cert, r.certMod, r.keyMod = &pair, certMod, keyMod
	onLoad := r.onLoad
	r.mu.Unlock()
	if onLoad != nil {
		onLoad(leaf.NotAfter)
	}
	return nil
}

// reload loads the files again, keeping the current pair on failure.
func (r *certReloader) reload() {
	if err := r.load(); err != nil {
		r.log.Error("TLS certificate not reloaded; keeping the current one", "err", err)
		return
	}
	r.mu.RLock()
	leaf := r.cert.Leaf
	r.mu.RUnlock()
	r.log.Info("TLS certificate loaded", "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
}

// changed reports whether either file's modification time moved.
func (r *certReloader) changed() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return !modTime(r.certFile).Equal(r.certMod) || !modTime(r.keyFile).Equal(r.keyMod)
}

// checkFiles reloads if the files changed; the watcher calls it.
func (r *certReloader) checkFiles() {
	if r.changed() {
		r.reload()
	}
}

// reportExpiry hands f the expiry of the current certificate now, and of
// every one loaded from now on.
func (r *certReloader) reportExpiry(f func(notAfter time.Time)) {
	r.mu.Lock()
	r.onLoad = f
	notAfter := r.cert.Leaf.NotAfter
	r.mu.Unlock()
	f(notAfter)
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cert, nil
}

func (r *certReloader) config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
}

// watch polls the files until close.
func (r *certReloader) watch(every time.Duration) {
	r.stop = make(chan struct{})
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				r.checkFiles()
			}
		}
	}()
}

func (r *certReloader) close() {
	r.once.Do(func() {
		if r.stop != nil {
			close(r.stop)
			<-r.done
		}
	})
}
