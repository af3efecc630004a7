// All DOM work of the page (the DOM contract: index.html's ids, the
// data-state and file-card attributes that style.css and the tests read).
// Render functions over plain data; no protocol logic. Text that came from
// the other side is set with textContent, never as HTML.

import { drawQR } from "./qr.js";

export const $ = (id) => document.getElementById(id);

const SECTIONS = ["start", "share", "password", "resume", "chat"];

// show makes the named sections visible and hides the others.
export function show(...ids) {
  for (const id of SECTIONS) $(id).hidden = !ids.includes(id);
}

// roomExists shows what belongs to a room (its state line, Leave) or
// hides it on the first page.
export function roomExists(yes) {
  $("room-state").hidden = !yes;
  $("leave").hidden = !yes;
}

// state sets the room's state (idle, waiting, connecting, connected,
// reconnecting, mismatch, ended) and the sentence that says it.
export function state(name, text) {
  $("room-state").dataset.state = name;
  $("state-text").textContent = text;
}

export function path(p) {
  const el = $("path");
  el.dataset.path = p || "";
  el.textContent = p === "direct" ? "Direct" : p === "relayed" ? "Relayed through TURN" : "";
}

export function rtt(ms) {
  const el = $("rtt");
  if (ms == null) {
    delete el.dataset.ms;
    el.textContent = "";
    return;
  }
  el.dataset.ms = String(Math.round(ms));
  el.textContent = `RTT ${Math.round(ms)} ms`;
}

export function hub(stateName, text) {
  $("hub-state").dataset.hub = stateName;
  $("hub-state").textContent = text;
}

// connections counts the connections that became ready in this page
// (#room-state data-conn): a test tells a kept connection from a new one.
export function connections(n) { $("room-state").dataset.conn = String(n); }

// alert shows text in the alert region, with a button for the next step
// when there is one; alert("") hides it.
export function alert(text, action = null, onAction = null) {
  $("alert").hidden = !text;
  $("alert-text").textContent = text;
  const b = $("alert-action");
  b.hidden = !action;
  b.textContent = action || "";
  b.onclick = action ? () => onAction() : null;
}

function timeEl(when) {
  const t = document.createElement("time");
  t.dateTime = when.toISOString();
  t.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return t;
}

// message adds one line to the chat: kind is me, peer or note; id is the
// chat message's id (data-id).
export function message(kind, text, when = new Date(), id = null) {
  const li = document.createElement("li");
  li.className = kind;
  if (id != null) li.dataset.id = String(id);
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = kind === "me" ? "You" : kind === "peer" ? "Them" : "Tryst";
  const body = document.createElement("span");
  body.className = "text";
  body.dir = "auto";
  body.textContent = text;
  li.append(timeEl(when instanceof Date && !isNaN(when) ? when : new Date()), who, body);
  $("messages").append(li);
  li.scrollIntoView({ block: "nearest" });
  return li;
}

export function note(text) { return message("note", text); }

// share fills the invite (link, QR, code).
export function share(link, code) {
  $("share-link").value = link;
  $("share-code").textContent = code;
  drawQR($("qr"), link);
}

// invite shows or hides the invite; canShow says whether it may still be
// wanted (the host, before the guest joined): then a button brings it
// back.
export function invite(visible, canShow) {
  $("share").hidden = !visible;
  $("hide-invite").hidden = !(visible && canShow && !$("chat").hidden);
  $("show-invite").hidden = visible || !canShow;
}

let copyTimer = null;
export function copied(ok) {
  const b = $("copy-link");
  $("copy-status").textContent = ok ? "Link copied" : "Could not copy; select the link and copy it";
  b.textContent = ok ? "Copied" : "Copy";
  clearTimeout(copyTimer);
  copyTimer = setTimeout(() => { b.textContent = "Copy"; $("copy-status").textContent = ""; }, 2000);
}

export function joinError(text) {
  $("join-error").textContent = text;
  $("join-error").hidden = !text;
  $("join-code").setAttribute("aria-invalid", text ? "true" : "false");
}

// sendEnabled keeps Send disabled while the message is empty or only
// white space.
export function sendEnabled() {
  $("send").disabled = $("message").disabled || $("message").value.trim() === "";
}

// ended makes the chat read-only: nothing to type into, nothing to send.
export function ended() {
  for (const id of ["message", "send", "file-input"]) $(id).disabled = true;
  $("choose-files").setAttribute("aria-disabled", "true");
  $("message").placeholder = "This chat has ended";
  path("");
  rtt(null);
}

export function human(n) {
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

function duration(s) {
  if (!Number.isFinite(s)) return "";
  if (s < 60) return `${Math.ceil(s)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

// fileCard adds (or finds) the card of a transfer and returns its setter:
// set({status, done, detail, started, from, resumedAt}) updates what is
// given; save(sha, onClick) adds the Save button of a verified file.
export function fileCard(id, dir, name, size) {
  let div = document.querySelector(`#transfers .file-card[data-id="${id}"][data-dir="${dir}"]`);
  if (!div) {
    div = document.createElement("div");
    div.className = "file-card";
    div.dataset.id = String(id);
    div.dataset.dir = dir;
    div.dataset.status = "queued";
    const n = document.createElement("span");
    n.className = "name";
    n.dir = "auto";
    n.textContent = name;
    const s = document.createElement("span");
    s.className = "size";
    s.textContent = human(size);
    const bar = document.createElement("progress");
    bar.max = size || 1;
    bar.value = 0;
    bar.setAttribute("aria-label", `${dir === "in" ? "Receiving" : "Sending"} ${name}`);
    const speed = document.createElement("span");
    speed.className = "speed";
    const eta = document.createElement("span");
    eta.className = "eta";
    const detail = document.createElement("p");
    detail.className = "detail";
    detail.dir = "auto";
    div.append(n, s, bar, speed, eta, detail);
    $("transfers").append(div);
  }
  const el = (sel) => div.querySelector(sel);
  let started = performance.now(), from = 0;
  return {
    div,
    set(u) {
      if (u.status) div.dataset.status = u.status;
      if (u.started != null) { started = u.started; from = u.from || 0; }
      if (u.resumedAt != null) div.dataset.resumedAt = String(u.resumedAt);
      if (u.detail != null) el(".detail").textContent = u.detail;
      if (u.done != null) {
        const bar = el("progress");
        bar.value = u.done;
        div.dataset.done = String(u.done);
        const secs = (performance.now() - started) / 1000;
        const rate = secs > 0.2 ? (u.done - from) / secs : 0;
        const active = ["sending", "receiving", "hashing"].includes(div.dataset.status);
        el(".speed").textContent = active && rate > 0 ? `${human(rate)}/s` : "";
        el(".eta").textContent = active && rate > 0 && u.done < size ? `${duration((size - u.done) / rate)} left` : "";
      }
      if (["verified", "failed", "refused"].includes(div.dataset.status)) {
        el(".speed").textContent = "";
        el(".eta").textContent = "";
      }
    },
    save(sha, onClick) {
      if (el("button.save")) return;
      const b = document.createElement("button");
      b.type = "button";
      b.className = "save";
      b.dataset.sha256 = sha;
      b.textContent = "Save";
      b.setAttribute("aria-label", `Save ${name}`);
      b.onclick = () => onClick().catch((e) => note(`Could not save ${name}: ${e.message}`));
      div.append(b);
    },
  };
}

// files wires the file input and drag-and-drop over the whole window to
// onFiles(File[]); enabled() says whether files can be sent now.
export function files(onFiles, enabled) {
  $("file-input").addEventListener("change", () => {
    const fs = [...$("file-input").files];
    $("file-input").value = "";
    if (fs.length) onFiles(fs);
  });
  let depth = 0;
  const overlay = $("drop-overlay");
  const hasFiles = (ev) => ev.dataTransfer && [...ev.dataTransfer.types].includes("Files");
  window.addEventListener("dragenter", (ev) => {
    if (!hasFiles(ev) || !enabled()) return;
    depth++;
    overlay.hidden = false;
  });
  window.addEventListener("dragleave", () => {
    if (depth > 0 && --depth === 0) overlay.hidden = true;
  });
  window.addEventListener("dragover", (ev) => { if (hasFiles(ev)) ev.preventDefault(); });
  window.addEventListener("drop", (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault();
    depth = 0;
    overlay.hidden = true;
    if (enabled()) onFiles([...ev.dataTransfer.files]);
  });
}
