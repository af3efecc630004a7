// Package web serves Tryst's browser client: plain HTML, CSS and JavaScript
// ES modules embedded in the binary (no build step), using CPace (on the
// vendored noble) and Web Crypto for the same end-to-end encryption as the
// Go client. No third-party requests.
//
// The modules in static mirror the Go client: protocol.js (constants, held
// equal to package proto's by TestProtocolConstantsMatchGo), crypto.js,
// hub.js, peer.js, transfer.js, store-worker.js (received files in the
// origin-private file system, incremental SHA-256, and the bulk data
// channel itself where the browser can transfer it to a worker), storage.js
// (IndexedDB), ui.js (all DOM work, the DOM contract the tests read) and
// app.js (wiring, and the exchange's state). cpace.js is client/cpace's
// twin (CPace on the vendored @noble/curves' ristretto255, whose bare
// imports index.html's import map resolves), which crypto.js imports on the
// page when it first runs an exchange (never in the store worker, which
// does not see the import map).
//
// File data and the page's main thread: where the browser can transfer an
// RTCDataChannel to a worker (Chromium, WebKit), the bulk channel lives in
// the store worker, which reads, hashes, seals, sends, opens, checks and
// writes every chunk; the page keeps the file handshake on the control
// channel, so a ping never queues behind file data on the page's event
// loop. Elsewhere (Firefox) the page does the same work itself. The page
// says which in document.body.dataset.bulk ("worker" or "page"), and
// ?bulk=page in the URL forces the page's path (TestBrowserBulkWorkerAndPage
// runs one side each way).
//
// Manual check (headless Chromium cannot answer a file picker): in a
// desktop Chromium, receive a file, press Save, choose a place in the
// save dialog (showSaveFilePicker), and compare the saved file's SHA-256
// with the sender's; in Firefox or Safari (no picker) Save downloads the
// file instead. The tests cover the download path's source, the OPFS file.
package web
