# The README's test command is `make test`: a format check, go vet (also
# for macOS and Windows), staticcheck, and every test with the race detector. It installs what the
# tests need first (scripts/test-deps.sh).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test deps fmt-check vet staticcheck race fuzz bench clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/tryst ./cmd/tryst

test: deps fmt-check vet staticcheck race

deps:
	./scripts/test-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# Also type-checked for macOS and Windows: the clients (chat, send,
# receive) run there; serve's Linux data plane has portable fallbacks.
vet:
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...
	GOOS=windows $(GO) vet ./...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

race:
	$(GO) test -race -count=1 -timeout 30m ./...

# Runs each fuzz target briefly; new crashers land in testdata/fuzz.
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
