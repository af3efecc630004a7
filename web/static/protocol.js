// Tryst protocol constants and pure helpers (docs/PROTOCOL.md). The numbers
// are Go's proto package's (proto/datachannel.go, proto/frame.go,
// proto/code.go); web's TestProtocolConstantsMatchGo imports this module
// under Node and compares every value with Go's, so a change on one side
// that the other misses fails a test rather than the wire.

// PROTOCOL_VERSION is what this client speaks, to the hub (create, join,
// resume) and to the other client (the sealed offer and answer). A hub
// that refuses it (unsupported_version) is not asked again with another:
// no other version can meet this one's PAKE.
export const PROTOCOL_VERSION = 3;

// GUESS_LIMIT is how many failed key confirmations (a password mismatch,
// or someone guessing) a side accepts in a room before it closes the room:
// each is at most one password guess by whoever is on the other end.
export const GUESS_LIMIT = 5;
// What a client tells the hub about each failed confirmation (a report
// frame's reason), and why it leaves at the limit (leave's reason, then the
// code of the room-closed frame the other side gets).
export const REPORT_FAILED_CONFIRMATION = "failed_confirmation";
export const CLOSED_GUESS_LIMIT = "guess_limit";

export const ROOM_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ";
export const ROOM_CODE_LEN = 18;
// The hub is reconnected with a backoff doubling from 500 ms up to this.
export const RECONNECT_BACKOFF_MAX_MS = 10000;

// Data channels: control carries everything but file data; bulk carries
// file-chunk and file-done only, so that a ping never waits behind
// megabytes of chunks. The channel number is the first 4 bytes of a
// sealed frame's nonce.
export const CONTROL_LABEL = "tryst";
export const BULK_LABEL = "tryst-bulk";
export const CONTROL_CHANNEL = 0;
export const BULK_CHANNEL = 1;

export const MSG = Object.freeze({
  CONFIRM: 1, CHAT: 2, CHAT_ACK: 3, PING: 4, PONG: 5, FILE_OFFER: 6, FILE_ACCEPT: 7,
  FILE_CHUNK: 8, FILE_ACK: 9, FILE_DONE: 10, FILE_RESULT: 11, BYE: 12,
});

// channelOf is the channel a message type travels on.
export function channelOf(type) {
  return type === MSG.FILE_CHUNK || type === MSG.FILE_DONE ? BULK_CHANNEL : CONTROL_CHANNEL;
}

export const FRAME_OVERHEAD = 26;
export const CHUNK_HEADER = 16;
export const MAX_MESSAGE_SIZE = 256 * 1024;
export const MAX_CHUNK_DATA = MAX_MESSAGE_SIZE - FRAME_OVERHEAD - CHUNK_HEADER;
// DEFAULT_CHUNK_DATA is the chunk size both clients send (each accepts up
// to MAX_CHUNK_DATA). SCTP without message interleaving never splits a
// message between channels, so a ping or a chat message waits for the chunk
// being sent: 64 KiB is about 13 ms of a 5 MB/s transfer, 255 KiB about
// 50 ms, for the same throughput within the noise (docs/BENCHMARKS.md,
// Browser transfers).
export const DEFAULT_CHUNK_DATA = 64 * 1024;
export const MAX_CHAT_TEXT = 32 * 1024;
export const ACK_EVERY = 1024 * 1024;

// Bulk flow control: chunks are written while the bulk channel's
// bufferedAmount is under HIGH_WATER, then the sender waits for
// bufferedamountlow at LOW_WATER. Chromium's SCTP sends the two channels'
// messages in turn, so a full bulk buffer does not hold control back; the
// Go client, on pion, keeps its buffer to what the path needs instead
// (client/pacer.go).
export const HIGH_WATER = 8 * 1024 * 1024;
export const LOW_WATER = 2 * 1024 * 1024;

export const PING_INTERVAL_MS = 5000;
export const PEER_TIMEOUT_MS = 15000;
export const GATHER_TIMEOUT_MS = 10000;

// Verdicts and refusals, the same words in both clients.
export const TEXT_CORRUPTED = "SHA-256 mismatch: the file was corrupted";
export const TEXT_WRITE_FAILED = "the receiver could not write the file";
export const TEXT_CANNOT_STORE = "the receiver cannot store the file";
export const TEXT_OLD_PEER = "the other person's Tryst speaks an older protocol version; it must be updated " +
  "(reload the page, or install a newer tryst)";

// File ids and offsets are JSON numbers: below 2^53 they are exact in
// JavaScript.
export const MAX_SAFE_ID = 2 ** 53;

// encodeChunk lays out a file-chunk payload: id ‖ offset ‖ data.
export function encodeChunk(id, offset, data) {
  const out = new Uint8Array(CHUNK_HEADER + data.byteLength);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(id));
  dv.setBigUint64(8, BigInt(offset));
  out.set(data, CHUNK_HEADER);
  return out;
}

// decodeChunk reads a file-chunk payload, or returns null for one that is
// too short, has an id or offset past 2^53, or more data than a chunk may
// carry (all ignored, as docs/PROTOCOL.md says).
export function decodeChunk(payload) {
  if (payload.byteLength < CHUNK_HEADER || payload.byteLength > CHUNK_HEADER + MAX_CHUNK_DATA) return null;
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const id = dv.getBigUint64(0), offset = dv.getBigUint64(8);
  if (id >= BigInt(MAX_SAFE_ID) || offset >= BigInt(MAX_SAFE_ID)) return null;
  return { id: Number(id), offset: Number(offset), data: payload.subarray(CHUNK_HEADER) };
}

// normalizeCode turns what a person typed into a room code (any case, any
// white space and dashes), or returns null if it is not one.
export function normalizeCode(s) {
  const raw = String(s).toUpperCase().replace(/[\s-]/g, "");
  if (raw.length !== ROOM_CODE_LEN || [...raw].some((ch) => !ROOM_CODE_ALPHABET.includes(ch))) return null;
  return raw.match(/.{3}/g).join("-");
}

// nameProblem is the rule an offered file name breaks, as the Go client
// words it (docs/PROTOCOL.md, "Receiving safely"), or "" for a plain name.
export function nameProblem(name) {
  if (typeof name !== "string" || name === "" || name === "." || name === "..") return 'is empty, "." or ".."';
  if (new TextEncoder().encode(name).length > 255) return "is longer than 255 bytes";
  if (name.includes("\ufffd") || /\p{Cs}/u.test(name)) return "is not valid UTF-8";
  if (/[\/\\]/.test(name)) return "contains a path separator";
  if (/^[A-Za-z]:/.test(name)) return "names a drive or an absolute path";
  if (/\p{Cc}/u.test(name)) return "contains control characters";
  if (/[\p{Cf}\u2028\u2029]/u.test(name)) return "contains invisible or direction-changing characters";
  if (/[. ]$/.test(name) || /^(con|prn|aux|nul|com[1-9]|lpt[1-9]) *(\.|$)/i.test(name)) {
    return "is a device name or ends with a dot or a space, which Windows cannot store";
  }
  return "";
}

// shown renders text the other side chose with anything that could hide or
// reorder it made visible (\u202e), as the Go client prints it. Chat text
// keeps its line breaks and direction (dir="auto" shows right-to-left
// scripts); file names and reasons go through shown.
export function shown(text) {
  return String(text).replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu,
    (c) => "\\u" + c.codePointAt(0).toString(16).padStart(4, "0"));
}

// offerVersion reads the protocol version of a sealed offer or answer: a
// payload without one is version 1; one above ours is spoken as ours.
export function offerVersion(payload) {
  const v = payload && payload.version;
  return Number.isInteger(v) && v >= 1 ? v : 1;
}
